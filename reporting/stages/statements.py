"""Statements stage: after publish, one statement per reportable seller of the filing.

DAC7 obliges the operator to give each reportable seller the information reported about them by
31 January (Directive 2011/16/EU, Annex V, Section III(A); the subparagraph number is not
verified against EUR-Lex, the OECD Model Rules have it as III(A)(3)); in Germany PStTG § 22(2)
with § 14(2)-(4), and § 24(1) Nr. 4 keeps a record of each notice's content and date.

Statements come from the filing only: the messages a ``nexus`` run published to the filing
state, read back from the published XML files (:mod:`reporting.statements.filed`), each record
joined to the ledger's row of its DocRefId to know the seller (``ledger_records.seller_key``),
and to the run's staged ``sellers.language``. A preview (routing ``jurisdiction``) is never a
filing and writes no statement.

A statement the ledger recorded already is a notice given (PStTG § 24(1) Nr. 4): writing the
statements again never writes over its page or changes its feed line, even where a catalog or
Babel changed since (a warning counts them). Each run's feed is also kept as
``statements/runs/<run_id>.jsonl``. The notice's date (``issued``) is the day the stage runs, in
the reporting time zone: the stage reads the clock, the renderer is given the date.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from reporting.errors import ConfigError, PermanentError
from reporting.jurisdictions import partner_jurisdictions
from reporting.ledger import open_ledger
from reporting.results import Manifest, StatementsResult
from reporting.settings import RunSettings, read_json
from reporting.stages.plan import ledger_url
from reporting.statements.feed import FEED, STATEMENTS_DIR, LanguageLookup, Published, write_statements

log = logging.getLogger(__name__)


class StatementsError(PermanentError):
    """The statements of a filing cannot be written as filed (a record unknown to the ledger)."""


def _language_lookup(settings: RunSettings) -> tuple[LanguageLookup, Any]:
    """seller_ids -> ``sellers.language`` from the run's staged extract (None where the source
    has no such column, or the seller none): one query per batch, the ids passed as a list (an
    Arrow table registered per batch cost DuckDB a quarter of a second on its first use)."""
    import duckdb
    import pyarrow.parquet as pq

    path = settings.run_path / "extract" / "sellers.parquet"
    if not path.is_file() or "language" not in pq.read_schema(path).names:

        def none(ids: Sequence[str]) -> dict[str, str | None]:
            return {}

        return none, None
    con = duckdb.connect()
    con.read_parquet(str(path)).project("seller_id, language").create_view("sellers")

    def lookup(ids: Sequence[str]) -> dict[str, str | None]:
        if not ids:
            return {}
        rows = con.execute(
            "select s.seller_id, s.language from sellers as s join (select unnest($ids) as seller_id) as w"
            " on w.seller_id = s.seller_id",
            {"ids": list(ids)},
        ).fetchall()
        return {sid: lang for sid, lang in rows}

    return lookup, con


def _configured_partners(settings: RunSettings, authorities: set[str]) -> dict[str, list[str]]:
    """The reportable jurisdictions the operator set itself for each filing authority of the run
    (``[authorities.XX] partner_jurisdictions``; ``[]``: the filing jurisdiction alone), as the
    rules stage decided with them (:func:`reporting.stages.rules.filing_context`)."""
    found = {a: partner_jurisdictions(settings.config.authorities, a) for a in sorted(authorities)}
    return {a: codes for a, codes in found.items() if codes is not None}


def write(settings: RunSettings) -> StatementsResult:
    """Write ``<out>/statements/`` for the run's published filing; returns counts only."""
    out = Path(settings.out_dir)
    if settings.preview:
        log.info("a preview (routing jurisdiction) is no filing: no statements")
        return {
            "written": False,
            "reason": "preview",
            "statements": 0,
            "recorded": 0,
            "kinds": {},
            "languages": {},
            "findings": [],
            "feed": None,
            "run_feed": None,
            "sha256": None,
            "seconds": 0.0,
        }
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError(f"{out}: no manifest.json; statements are written for a published run only")
    manifest: Manifest = read_json(manifest_path)
    if manifest.get("run_id") != settings.run_id:
        raise ConfigError(
            f"{out} holds the publication of run {manifest.get('run_id')}, not of run {settings.run_id}: "
            "statements are written from a run's own filing"
        )
    started = time.perf_counter()
    messages = [Published(out / f["file"], f["authority"]) for f in manifest["files"]]
    for m in messages:
        if not m.path.is_file():
            raise ConfigError(f"{m.path}: a published file of the run is missing; statements need the filed XML")
    lookup, con = _language_lookup(settings)
    try:
        with open_ledger(ledger_url(settings), create=False) as ledger:
            try:
                written = write_statements(
                    out,
                    messages,
                    environment=settings.environment,
                    year=settings.year,
                    seller_of=ledger.statement_sellers,
                    language_of=lookup,
                    recorded=ledger.recorded_statements,
                    run_id=settings.run_id,
                    issued=datetime.now(ZoneInfo(settings.config.reporting.timezone)).date(),
                    contact=settings.config.statement_contact,
                    ledger_rows=True,
                    partners=_configured_partners(settings, {m.authority for m in messages}),
                )
            except (LookupError, ValueError) as exc:
                raise StatementsError(str(exc)) from None
            # the delivery record (PStTG § 22, § 24): every statement pending until the platform
            # reports it sent; the same feed again records nothing new. Recorded from the rows the
            # writing processes made with the feed (each statement's canonical JSON), not read back
            try:
                recorded = ledger.record_statements(out / STATEMENTS_DIR / FEED, rows=written.ledger_rows)
            finally:
                if written.ledger_rows is not None:
                    written.ledger_rows.unlink(missing_ok=True)
    finally:
        if con is not None:
            con.close()
    seconds = time.perf_counter() - started
    for f in written.findings:
        log.warning("%s", f.describe())  # table, seller id and rule: no personal data
    if written.kept:
        log.warning(
            "statements: %d recorded before came out different in this build (a catalog or locale data "
            "changed); their recorded pages and feed lines were kept, as given to the sellers (PStTG § 24(1) Nr. 4)",
            written.kept,
        )
    log.info(
        "statements: %d written in %.2f s (%s), %d new in the ledger",
        written.statements,
        seconds,
        ", ".join(f"{n} {k}" for k, n in sorted(written.kinds.items())) or "none",
        recorded,
    )
    return {
        "written": True,
        "reason": None,
        "statements": written.statements,
        "recorded": recorded,
        "kinds": written.kinds,
        "languages": written.languages,
        "findings": [f.as_dict() for f in written.findings],
        "feed": f"{STATEMENTS_DIR}/{FEED}",
        "run_feed": written.run_feed,
        "sha256": written.sha256,
        "seconds": round(seconds, 3),
    }
