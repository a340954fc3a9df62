"""The filing deadline: DAC7 reports for a year are due by 31 January of the next year (the day
comes from the filing state's row of the deadline table, ``reporting.deadlines``).

From a configurable day before it (``DAC7_DEADLINE_WARN``, ``MM-DD``, default ``01-25``) the
``dac7_deadline`` DAG checks the filing ledger every day and warns while the filing state (the
member state the operator files in) has no production filing of the year published (or accepted).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from dac7_support.notify import notify

log = logging.getLogger("dac7.deadline")

DEFAULT_WARN = "01-25"


def warn_date(filing_year: int, setting: str | None = None, due: date | None = None) -> date:
    """The day from which a missing filing is warned about, in the year the filing is due.

    ``setting`` is ``MM-DD`` (``DAC7_DEADLINE_WARN``), a day before the due day ``due`` (default:
    the EU generic edition's filing deadline of the deadline table, 31 January)."""
    from reporting.deadlines import EU, filing_due

    due = due or filing_due(EU, filing_year - 1)
    text = (setting if setting is not None else os.environ.get("DAC7_DEADLINE_WARN") or DEFAULT_WARN).strip()
    try:
        month, day = (int(p) for p in text.split("-"))
        warn = date(filing_year, month, day)
    except ValueError:
        raise ValueError(f"DAC7_DEADLINE_WARN {text!r}: expected MM-DD, e.g. {DEFAULT_WARN}") from None
    if warn >= due:
        raise ValueError(f"DAC7_DEADLINE_WARN {text!r}: the warning must come before the deadline, {due:%d %B}")
    return warn


def missing_filings(expected: Iterable[str], filed: Iterable[str]) -> list[str]:
    """The expected authorities without a filing."""
    return sorted(set(expected) - set(filed))


def configured_authorities(config: Any) -> list[str]:
    """The authority a filing is expected for: the member state the operator files in, alone (its
    law decides the filing for every seller; the other states receive the sellers from it through
    the exchange between authorities). Previews are never filings and never checked here."""
    return [config.operator.country]


def deadline_message(year: int, missing: list[str], warn: date, deadline: date | None = None) -> tuple[str, str]:
    from reporting.deadlines import filing_due

    deadline = deadline or min(filing_due(a, year) for a in missing)
    subject = f"DAC7 {year}: no production filing published yet for {', '.join(missing)}"
    text = (
        f"The DAC7 report for {year} is due by {deadline.isoformat()} (warning from {warn.isoformat()}). "
        f"The filing ledger holds no published or accepted production message of {year} for "
        f"{', '.join(missing)}.\n"
        "What to do: run (or rerun) dac7_annual for the year with environment 'prod' and have a second "
        "person approve it under Required actions; check `dac7 ledger list` for a filing waiting there. "
        "If nothing is due to an authority (no reportable seller, no nil report expected), record that "
        "decision; the warning repeats daily until the deadline."
    )
    return subject, text


def check_deadline(year: int, today: date, config_path: str | Path, ledger_url: str | None = None) -> dict[str, Any]:
    """Warn (log WARNING and :func:`notify`) when, on or after the warning day, an expected
    authority has no production filing of ``year`` in the ledger; ``today`` is the run's date.

    ``ledger_url``: the ledger of the annual runs, as their tasks resolve it
    (``dac7_support.connections.ledger_url``: ``DAC7_LEDGER_URL``, else the Connection of
    ``DAC7_LEDGER_CONN_ID``); None: the configuration's ``[ledger] url``, else the default file in
    the working directory."""
    from sqlalchemy.engine import make_url

    from reporting.config import load_config
    from reporting.deadlines import filing_due
    from reporting.ledger import open_ledger
    from reporting.ledger.model import LIVE_MESSAGE_STATUSES
    from reporting.ledger.url import resolve_ledger_url
    from reporting.vocabulary import PROD

    config = load_config(config_path)
    expected = configured_authorities(config)
    due = min(filing_due(a, year) for a in expected)
    warn = warn_date(year + 1, due=due)
    if today < warn:
        log.info("DAC7 %s: %s day(s) before the deadline warning (%s)", year, (warn - today).days, warn)
        return {"year": year, "due": False, "missing": []}
    # the ledger of the annual runs: the same order of precedence as reporting.pipeline.prepare
    url = resolve_ledger_url(ledger_url, config_url=config.ledger, working_dir=Path.cwd())
    assert url is not None  # a working directory is given: never None
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and not Path(u.database).exists():
        # a SQLite ledger never created: nothing was filed there (or the URL is wrong)
        filed: set[str] = set()
        note = (
            f"\nThere is no ledger file at {Path(u.database).name} yet: is DAC7_LEDGER_URL (or the Airflow "
            "Connection of DAC7_LEDGER_CONN_ID) right?"
        )
    else:
        with open_ledger(url, create=False) as ledger:
            filed = {
                m.authority for m in ledger.messages(year=year, environment=PROD) if m.status in LIVE_MESSAGE_STATUSES
            }
        note = ""
    missing = missing_filings(expected, filed)
    if missing:
        subject, text = deadline_message(year, missing, warn, due)
        notify(subject, text + note, level=logging.WARNING)
    else:
        log.info("DAC7 %s: the production filing is published for %s", year, ", ".join(expected))
    return {"year": year, "due": True, "missing": missing}
