"""The daily verification of the due-diligence items: after the daily run, the items a
verification adapter can check (a seller's TINs, its VAT number) that are unverified are checked
through :func:`reporting.verification.verify_batch`, and what the adapters found is recorded in
the state (:func:`reporting.ledger.due_diligence.record_verifications`), so that the next run
sees the item verified or invalid (an invalid one is requested).

    result = verify_due_items(config, source_url=url, ledger=ledger, today=date(2026, 3, 2),
                              key=hash_key(os.environ[KEY_ENV]))

What is verified (:func:`reporting.ledger.due_diligence.verification_due`): of the sellers in
scope or in an open cycle, each TIN or VAT item that is unverified (new, changed, or its 36
months ran out, PStTG § 20(2)), and, with ``vies`` switched on, each VAT item VIES found invalid
whose answer may no longer be reused (``[verification.vies] invalid_cache_days``: a registration
may become valid any day). The local adapters (python-stdnum) check every item due; the services
(VIES, TIN on the Web) make at most ``[verification] max_per_day`` calls per run in all (a retry
is a call, a cached answer none), for the items never tried first, then those tried longest ago,
among equals those of open cycles: the items after the last call are the next day's (not
recorded, not tried).

The values are read from the source for those sellers only, and taken only where their digest is
the one the state holds (the value the daily run saw). An item is verified when every identifier
of it is (a seller with two TINs), invalid when one is; otherwise it stays unverified, and the
attempt is recorded with its reason (a service that did not answer after its retries, no adapter
for such an identifier) as the seller's history's ``verification`` event, so that it goes to the
back of the queue; an attempt that called no service is recorded once, until its reason or the
seller's state changes. Where a service checks an item, only its verified answer verifies it
(PStTG § 18(1) sentence 2): python-stdnum's valid format then leaves it unverified, with the
service's reason (its invalid format still makes it invalid). The adapters switched on are those
of ``[verification.NAME]``: by default python-stdnum's format and check digits alone (PStTG
§ 18(1) sentence 2 asks for the EU's interfaces where they exist: switch on ``vies`` and
``tin_on_the_web``, docs/guide/verification.md).

No value leaves this module but inside the adapters' requests: the result holds counts, the
recorded sources name adapters, answers and consultation numbers, the log says counts.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
import pyarrow as pa

from reporting.config import Config
from reporting.due_diligence.run import _stream, macros, text_schema
from reporting.due_diligence.source import SourceReader
from reporting.errors import database_errors
from reporting.ledger import Ledger
from reporting.ledger.due_diligence import (
    Verification,
    VerificationDue,
    record_unverified,
    record_verifications,
    verification_due,
)
from reporting.ledger.model import INVALID, UNVERIFIED, VERIFIED
from reporting.source import sql_text
from reporting.verification import (
    LEVELS,
    OVER_LIMIT,
    Adapter,
    Item,
    ItemOutcome,
    VerificationError,
    VerificationResult,
    build_adapters,
    results_by_item,
    verify_batch,
)
from reporting.vocabulary import DEFAULT_OPERATOR

log = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[\s.\-/]+")
#: the longest text a ``verification`` event keeps as its source
SOURCE_CHARS = 400


@dataclass(frozen=True, slots=True)
class VerificationRunResult:
    """What a verification run did: counts of due-diligence items (a seller's ``tin`` or
    ``vat``), never a value."""

    operator_id: str
    date: date
    adapters: tuple[str, ...]
    due: int  # items due for verification when the run began
    asked: int  # of them, handed to the adapters (at most max_per_day)
    verified: int
    invalid: int
    unverified: int  # could not be verified: the attempt recorded, the item still unverified
    stale: int  # the value changed or went since the daily run: the next run sees it
    seconds: float

    @property
    def left(self) -> int:
        """Items due that this run did not ask for: the next day's."""
        return max(self.due - self.asked, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "operator_id": self.operator_id,
            "date": self.date.isoformat(),
            "adapters": list(self.adapters),
            "due": self.due,
            "asked": self.asked,
            "verified": self.verified,
            "invalid": self.invalid,
            "unverified": self.unverified,
            "stale": self.stale,
            "left": self.left,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True, slots=True)
class _Wanted:
    """One due-diligence item to verify: its identifiers (a seller's TINs: several), or why it
    cannot be (``problem``), or none found (its value changed since the run: stale)."""

    due: VerificationDue
    item: str
    identifiers: tuple[Item, ...] = ()
    problem: str | None = None


@database_errors("due-diligence verification")  # DuckDB's words without the values they quote
def verify_due_items(
    config: Config,
    *,
    source_url: str,
    ledger: Ledger,
    today: date,
    key: bytes,
    operator_id: str = DEFAULT_OPERATOR,
    adapters: Sequence[Adapter] | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> VerificationRunResult:
    """Verify the operator's items due on ``today`` (see the module) and record the outcomes.
    ``key``: the identifier hashes' key (:func:`reporting.verification.hash_key`); ``adapters``:
    default those the configuration switches on (closed here when built here); ``clock`` the
    time of each answer and record (default the real UTC time)."""
    started = time.perf_counter()
    now = clock or (lambda: datetime.now(UTC))
    mine = config.for_operator(operator_id)
    built = adapters is None
    chosen = list(build_adapters(mine, transport=transport) if adapters is None else adapters)
    names = tuple(a.name for a in chosen)
    try:
        settings = config.verification
        recheck = {}
        if "vies" in names:  # a VAT number VIES found not registered may be registered since
            recheck["vat"] = today - timedelta(days=settings.vies.invalid_cache_days)
        due, total = verification_due(ledger.engine, operator_id, recheck_invalid=recheck, limit=None if chosen else 0)
        wanted = _identifiers(source_url, due)
        items = [i for w in wanted for i in w.identifiers]
        top = _highest(items, chosen)
        results = _verify(items, chosen, ledger, today, key=key, clock=now, sleep=sleep, calls=settings.max_per_day)
        outcomes = results_by_item(items, results)
    finally:
        if built:
            for adapter in chosen:
                adapter.close()
    by_item = dict(zip(items, outcomes, strict=True))
    decided: list[Verification] = []
    tried: list[Verification] = []  # a service was called, or its batch found it unavailable
    unchecked: list[Verification] = []  # no call: recorded when the reason or the value changed
    left = 0
    for w in wanted:
        if not w.identifiers and w.problem is None:
            continue  # stale: nothing of the source has the state's value any more
        found = [_required(by_item[i], top.get(i)) for i in w.identifiers]
        v = _verification(w, found, now, operator_id)
        if v.state != INVALID and any(_over_limit(o, top.get(o.item)) for o in found):
            left += 1  # its service's calls of the day were spent: the next day's
            continue
        if v.state in (VERIFIED, INVALID):
            decided.append(v)
        elif any(r.attempts for o in found for r in o.results) or any(_not_asked(o) for o in found):
            tried.append(v)
        else:
            unchecked.append(v)
    zone = ZoneInfo(config.reporting.timezone)
    with ledger.due_diligence_lock(operator_id, holder=f"verification {today}"):
        verified, invalid = (
            record_verifications(ledger.engine, [v for v in decided if v.state == state], now=now(), zone=zone)
            for state in (VERIFIED, INVALID)
        )
        unverified = record_unverified(ledger.engine, tried, now=now())
        unverified += record_unverified(ledger.engine, unchecked, now=now(), repeat=False)
    asked = sum(len(d.items) for d in due) - left
    result = VerificationRunResult(
        operator_id=operator_id,
        date=today,
        adapters=names,
        due=total,
        asked=asked,
        verified=verified,
        invalid=invalid,
        unverified=unverified,
        stale=asked - verified - invalid - unverified,
        seconds=time.perf_counter() - started,
    )
    log.info("due-diligence verification %s %s: %s", operator_id, today, result.as_dict())
    return result


def _verify(
    items: Sequence[Item],
    adapters: Sequence[Adapter],
    ledger: Ledger,
    today: date,
    *,
    key: bytes,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    calls: int,
) -> list[VerificationResult]:
    """Every adapter's results about the items it accepts: the local ones (python-stdnum) check
    every item; the remote ones, one after the other and the items in the queue's order, make at
    most ``calls`` calls in all (``[verification] max_per_day``: a retry is a call, an answer from
    the cache is none), and the items after the last call are not asked (:data:`OVER_LIMIT`)."""
    local = [a for a in adapters if not a.remote]
    results = verify_batch(items, local, ledger, today, key=key, clock=clock, sleep=sleep) if local else []
    for adapter in (a for a in adapters if a.remote):
        mine = verify_batch(items, [adapter], ledger, today, key=key, clock=clock, sleep=sleep, max_calls=max(calls, 0))
        calls -= sum(r.attempts for r in mine)
        results += mine
    return results


def _highest(items: Sequence[Item], adapters: Sequence[Adapter]) -> dict[Item, frozenset[str]]:
    """For each item a remote adapter accepts: the adapters of the highest level that accept it,
    whose verified answer alone makes it verified (:func:`_required`)."""
    out: dict[Item, frozenset[str]] = {}
    for item in items:
        accepting = [a for a in adapters if a.accepts(item)]
        if any(a.remote for a in accepting):
            level = max(LEVELS.index(a.level) for a in accepting)
            out[item] = frozenset(a.name for a in accepting if LEVELS.index(a.level) == level)
    return out


def _required(outcome: ItemOutcome, top: frozenset[str] | None) -> ItemOutcome:
    """The item's outcome, where a service of the EU or a member state checks it (VIES, TIN on
    the Web), verified only by that service's verified answer: PStTG § 18(1) sentence 2 asks for
    "die von einem Mitgliedstaat oder der Europäischen Union kostenlos zur Verfügung gestellte
    elektronische Schnittstelle" where one exists (https://www.gesetze-im-internet.de/psttg/__18.html),
    so python-stdnum's valid format does not verify an item the service could not answer for: it
    stays unverified, with the service's reason; its invalid format still makes it invalid."""
    if top is None or outcome.state != VERIFIED or outcome.decided_by is None or outcome.decided_by.adapter in top:
        return outcome
    theirs = [r for r in outcome.results if r.adapter in top]
    why = "; ".join(f"{r.adapter}: {r.detail}" for r in theirs) or f"{', '.join(sorted(top))}: no answer"
    detail = f"{why} ({outcome.decided_by.adapter}'s {outcome.decided_by.level} check alone does not verify it)"
    return ItemOutcome(outcome.item, UNVERIFIED, detail, None, outcome.results)


def _over_limit(outcome: ItemOutcome, top: frozenset[str] | None) -> bool:
    """Whether the service the item needs did not ask it: the day's calls were spent."""
    return outcome.state != INVALID and any(
        r.adapter in (top or ()) and r.detail.startswith(OVER_LIMIT) for r in outcome.results
    )


def _not_asked(outcome: ItemOutcome) -> bool:
    """Whether a service was found unavailable for the item in this batch (tried: it goes to the
    back of the queue)."""
    return any(r.attempts == 0 and not r.cached and r.detail.startswith("not asked:") for r in outcome.results)


def _verification(
    w: _Wanted, outcomes: Sequence[ItemOutcome], now: Callable[[], datetime], operator_id: str
) -> Verification:
    """The due-diligence item's outcome from its identifiers' (every one verified: verified; one
    invalid: invalid; else unverified, with the reason) and the source text the event keeps: each
    deciding adapter, the service, its answer and its consultation number."""
    value_hash = w.due.items[w.item]
    if w.problem is not None:
        return Verification(w.due.seller_id, w.item, UNVERIFIED, w.problem, now(), operator_id, value_hash)
    invalid = [o for o in outcomes if o.state == INVALID]
    if invalid:
        deciding = [o.decided_by for o in invalid if o.decided_by is not None]
        at = max(r.checked_at for r in deciding)
        return Verification(w.due.seller_id, w.item, INVALID, _evidence(deciding), at, operator_id, value_hash)
    if outcomes and all(o.state == VERIFIED for o in outcomes):
        deciding = [o.decided_by for o in outcomes if o.decided_by is not None]
        at = min(r.checked_at for r in deciding)  # the oldest answer decides when it runs out
        return Verification(w.due.seller_id, w.item, VERIFIED, _evidence(deciding), at, operator_id, value_hash)
    reasons = "; ".join(dict.fromkeys(f"{o.item.country}: {o.detail}" for o in outcomes if o.state == UNVERIFIED))
    return Verification(w.due.seller_id, w.item, UNVERIFIED, _cut(reasons), now(), operator_id, value_hash)


def _evidence(results: Sequence[VerificationResult]) -> str:
    """``vies (VIES SOAP checkVatApprox https://...): VIES: valid ...; consultation number WAPI...``,
    one part per identifier, ``|`` between them."""
    parts = []
    for r in results:
        text = f"{r.item.country}: {r.adapter} ({r.source}): {r.detail}"
        if r.evidence:
            text += f"; consultation number {r.evidence}"
        if r.cached:
            text += f"; the answer of {r.checked_at:%Y-%m-%d}, from the cache"
        parts.append(text)
    return _cut(" | ".join(parts))


def _cut(text: str) -> str:
    return text if len(text) <= SOURCE_CHARS else text[: SOURCE_CHARS - 3] + "..."


def _identifiers(source_url: str, due: Sequence[VerificationDue]) -> list[_Wanted]:
    """Each item of ``due`` with its identifiers as the source holds them (the value whose digest
    the state holds), or the reason it cannot be checked; an item whose value is not found is
    stale (no identifiers, no problem)."""
    if not due:
        return []
    rows = _values(source_url, due)
    found: dict[tuple[str, str], list[tuple[str | None, str]]] = {}
    for seller_id, item, country, value in rows:
        found.setdefault((seller_id, item), []).append((country, value))
    out = []
    for d in due:
        for item in d.items:
            values = found.get((d.seller_id, item), [])
            if not values:
                out.append(_Wanted(d, item))
                continue
            try:
                identifiers = tuple(_item(d, item, country, value) for country, value in values)
            except VerificationError as exc:
                out.append(_Wanted(d, item, problem=f"not checked: {exc}"))
                continue
            out.append(_Wanted(d, item, identifiers))
    return out


def _item(d: VerificationDue, item: str, country: str | None, value: str) -> Item:
    """The identifier to verify: a TIN with its issuing state; a VAT number with its prefix (the
    seller's residence country, Greece as EL, put in front of a number that has none). Refused
    (:class:`VerificationError`, naming the seller and the rule, never the value): a TIN without
    an issuing state, a VAT number without a prefix or a residence country, what an Item refuses."""
    entity = d.seller_type == "entity"
    if item == "tin":
        if not country:
            raise VerificationError(f"seller {d.seller_id}: a TIN without its issuing state (seller_tins.issued_by)")
        return Item(d.seller_id, "tin", country, value, entity=entity)
    compact = _SEPARATORS.sub("", value).upper()
    if compact[:2].isascii() and compact[:2].isalpha() and len(compact) > 2:
        return Item(d.seller_id, "vat", compact[:2], value, entity=entity)
    residence = (d.country or "").upper()
    if not residence:
        raise VerificationError(f"seller {d.seller_id}: a VAT number without its country prefix or a residence country")
    prefix = "EL" if residence == "GR" else residence
    return Item(d.seller_id, "vat", prefix, prefix + compact, entity=entity)


def _values(source_url: str, due: Sequence[VerificationDue]) -> list[tuple[str, str, str | None, str]]:
    """(seller_id, item, country, value) of the items of ``due`` whose value in the source has the
    state's digest (``due_diligence_verify.sql``), the source's identity tables read a batch at a
    time and kept for those sellers only."""
    wanted = pa.table(
        {
            "seller_id": [d.seller_id for d in due for _ in d.items],
            "item": [i for d in due for i in d.items],
            "value_hash": [h for d in due for h in d.items.values()],
        }
    )
    con = duckdb.connect(":memory:")
    try:
        macros(con)
        con.register("wanted", wanted)
        with SourceReader(source_url) as source:
            for table, name in (("sellers", "ver_sellers"), ("seller_tins", "ver_tins")):
                _keep(con, source, table, name)
        con.execute("create view reader_seller_tins as select * from ver_tins")
        con.execute(f"create table tin_digests as {sql_text('due_diligence_tins.sql')}")
        rows = con.execute(sql_text("due_diligence_verify.sql"), {"tin": "tin", "vat": "vat"}).fetchall()
    finally:
        con.close()
    return [(str(s), str(i), c, str(v)) for s, i, c, v in rows]


def _keep(con: duckdb.DuckDBPyConnection, source: SourceReader, table: str, name: str) -> None:
    """The rows of ``table`` whose seller is wanted, as the table ``name`` (every column text)."""
    view = f"reader_{table}"
    with source.table(table) as reader, _stream(con, view, reader, text_schema(table)):
        con.execute(
            f"create table {name} as select * from {view} where dd_clean(seller_id) in (select seller_id from wanted)"
        )
