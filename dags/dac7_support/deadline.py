"""The filing deadline: DAC7 reports for a year are due by 31 January of the next year (the day
comes from the filing state's row of the deadline table, ``reporting.deadlines``).

From a configurable day before it (``DAC7_DEADLINE_WARN``, ``MM-DD``, default ``01-25``) the
``dac7_deadline`` DAG checks the filing ledger every day and warns while the filing state (the
member state the operator files in) has no production filing of the year published (or accepted).

The same DAG warns, the same way, about seller statements (each reportable seller receives the
information reported about them by 31 January: the ``seller_statement`` row of the filing state's
profile in the deadline table, which the warning cites: PStTG § 22(2) for DE, Directive 2011/16/EU,
Annex V, Section III(A) for a member state without a national text, SI 2023/817 reg. 4(4) for GB):
while production statements of the year are still pending or failed in the ledger's delivery
record, or while a filing has sellers but no statement is recorded for them. A statement that a
later one replaces is superseded and no longer counts as unsent (``reporting.ledger.statements``).

A filing outside the EU is checked the same way, with its own profile's rows: a filing with HMRC
(the UK operator of a group, or an operator filing in GB) is due by 31 January under SI 2023/817
reg. 4(1), its seller statements by the same day under reg. 4(4) (the ``GB`` rows of the deadline
table), its due day ends in Europe/London, HMRC states no time for a correction, and the messages
name the UK regulations and the upload HMRC takes instead of DAC7's texts.
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
    the exchange between authorities); in a group, each operator's. Previews are never filings and
    never checked here."""
    return sorted({authority for _op, authority in configured_filings(config)})


def configured_filings(config: Any) -> list[tuple[str, str]]:
    """Each filing expected: ``(operator id, the member state it files in)``, the default operator
    (``[operator]``) first, then each ``[operators.ID]`` of a group (each files its own report)."""
    return [(op, config.for_operator(op).operator.country) for op in config.operator_ids]


def _label(config: Any, operator_id: str, authority: str) -> str:
    """A filing as a message names it: its authority, with its operator in a group (``lt2 LT``)."""
    return f"{operator_id} {authority}" if config.operators else authority


def _authority_of(label: str) -> str:
    """The authority of a filing's label (``GB``, ``uk_ltd GB``)."""
    return label.rsplit(" ", 1)[-1]


def model_rules_lines(year: int, labels: Iterable[str]) -> list[str]:
    """For each filing of ``labels`` under a jurisdiction of the OECD Model Rules (a filing with
    HMRC), its law, due day and source (``reporting.jurisdictions``: SI 2023/817 reg. 4(1)), and
    how it is filed: HMRC takes the file by upload in its service, from the outbox package."""
    from reporting.deadlines import deadline_table, filing_due, profile_of
    from reporting.jurisdictions import rule_set_for

    lines = []
    for label in labels:
        authority = _authority_of(label)
        rules = rule_set_for(authority)
        if not rules.model_rules:
            continue
        lines.append(
            f"{label} reports to {deadline_table()[profile_of(authority)].name} under {rules.law}, by "
            f"{filing_due(authority, year).isoformat()} ({rules.sources['deadline']}): upload its outbox package "
            "in HMRC's service and mark it uploaded (nothing is transmitted to HMRC)."
        )
    return lines


def _citation(source: str) -> str:
    """A deadline row's source as a citation: its text before the first ``": "`` (the statute and
    its paragraph, without the quotation that follows)."""
    return source.split(": ", 1)[0]


def statement_laws(authorities: Iterable[str], year: int) -> list[str]:
    """The laws that have each seller receive its information, for filings of ``year`` with
    ``authorities``: each filing state's ``seller_statement`` row of the deadline table, cited
    (:func:`_citation`): a filing is governed by the law of the state it is filed in, so DE cites
    PStTG § 22(2), a member state without a national profile (LT) the Directive (Annex V,
    Section III(A), the EU row), GB SI 2023/817 reg. 4(4)."""
    from reporting.deadlines import deadline_for

    return list(dict.fromkeys(_citation(deadline_for(a, year, "seller_statement").source) for a in authorities))


def _report_of(year: int, labels: Iterable[str]) -> str:
    """The report that is missing, named by each filing's own law: ``The DAC7 report for 2025 is``
    for EU filings, ``The report for 2025 under The Platform Operators ... (SI 2023/817) is`` for a
    filing with HMRC, both with their filings where they are mixed."""
    from reporting.jurisdictions import DAC7, rule_set_for

    laws: dict[str, list[str]] = {}
    for label in labels:
        rules = rule_set_for(_authority_of(label))
        laws.setdefault(rules.law if rules.model_rules else rules.name, []).append(label)
    if len(laws) > 1:
        each = "; ".join(f"{', '.join(ls)} under {law}" for law, ls in laws.items())
        return f"The reports for {year} ({each}) are"
    [law] = laws
    return f"The {law} report for {year} is" if law == DAC7.name else f"The report for {year} under {law} is"


def deadline_message(year: int, missing: list[str], warn: date, deadline: date | None = None) -> tuple[str, str]:
    from reporting.deadlines import filing_due

    deadline = deadline or min(filing_due(_authority_of(a), year) for a in missing)
    subject = f"DAC7 {year}: no production filing sent yet for {', '.join(missing)}"
    text = (
        f"{_report_of(year, missing)} due by {deadline.isoformat()} (warning from {warn.isoformat()}). "
        f"The filing ledger holds no production message of {year} sent (transmitted or uploaded) or "
        f"accepted for {', '.join(missing)}.\n"
        "What to do: run (or rerun) dac7_annual for the year with environment 'prod' and have a second "
        "person approve it under Required actions, then transmit it (dac7 transmit), or upload its outbox "
        "package and mark it uploaded; check `dac7 ledger list` for a filing waiting there. "
        "If nothing is due to an authority (no reportable seller, no nil report expected), record that "
        "decision; the warning repeats daily until the deadline."
    )
    text += "".join(f"\n{line}" for line in model_rules_lines(year, missing))
    return subject, text


def check_deadline(year: int, today: date, config_path: str | Path, ledger_url: str | None = None) -> dict[str, Any]:
    """Warn (log WARNING and :func:`notify`) when, on or after the warning day, an expected
    authority has no production filing of ``year`` in the ledger; ``today`` is the run's date.

    ``ledger_url``: the ledger of the annual runs, as their tasks resolve it
    (``dac7_support.connections.ledger_url``: ``DAC7_LEDGER_URL``, else the Connection of
    ``DAC7_LEDGER_CONN_ID``); None: the configuration's ``[ledger] url``, else the default file in
    the working directory."""
    from reporting.config import load_config
    from reporting.deadlines import filing_due
    from reporting.ledger import open_ledger
    from reporting.ledger.model import LIVE_MESSAGE_STATUSES
    from reporting.vocabulary import PROD

    config = load_config(config_path)
    filings = configured_filings(config)
    expected = [_label(config, op, a) for op, a in filings]
    due = min(filing_due(a, year) for _op, a in filings)
    warn = warn_date(year + 1, due=due)
    if today < warn:
        log.info("DAC7 %s: %s day(s) before the deadline warning (%s)", year, (warn - today).days, warn)
        return {"year": year, "due": False, "missing": []}
    # the ledger of the annual runs: the same order of precedence as reporting.pipeline.prepare
    url, note = _ledger_of(ledger_url, config.ledger)
    if note:  # a SQLite ledger never created: nothing was filed there (or the URL is wrong)
        filed: set[str] = set()
    else:
        with open_ledger(url, create=False) as ledger:
            filed = {
                _label(config, s.operator_id, s.authority)
                for s in ledger.filing_states(year, environment=PROD)
                if s.message_status in LIVE_MESSAGE_STATUSES and _sent(s)
            }
    missing = missing_filings(expected, filed)
    if missing:
        subject, text = deadline_message(year, missing, warn, due)
        notify(subject, text + note, level=logging.WARNING)
    else:
        log.info("DAC7 %s: the production filing is sent for %s", year, ", ".join(expected))
    return {"year": year, "due": True, "missing": missing}


def _sent(state: Any) -> bool:
    """A filing counts as filed once sent: transmitted to the DIP or marked uploaded from the
    outbox (every authority takes one of the two), or answered by the authority (sent by hand
    before transmissions were recorded). Published alone is not sent."""
    return state.message_status == "accepted" or any(s.state in ("transmitted", "uploaded") for s in state.steps)


def _ledger_of(ledger_url: str | None, config_url: str | None) -> tuple[str, str]:
    """The ledger of the annual runs (the same order of precedence as
    ``reporting.pipeline.prepare``), and a note for the message when it is a SQLite file that was
    never created (then nothing was recorded there, or the URL is wrong)."""
    from sqlalchemy.engine import make_url

    from reporting.ledger.url import resolve_ledger_url

    url = resolve_ledger_url(ledger_url, config_url=config_url, working_dir=Path.cwd())
    assert url is not None  # a working directory is given: never None
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and not Path(u.database).exists():
        return url, (
            f"\nThere is no ledger file at {Path(u.database).name} yet: is DAC7_LEDGER_URL (or the Airflow "
            "Connection of DAC7_LEDGER_CONN_ID) right?"
        )
    return url, ""


def statements_message(
    year: int,
    unsent: dict[str, tuple[int, int]],
    without: list[str],
    warn: date,
    due: date,
    laws: Iterable[str],
) -> tuple[str, str]:
    """The warning about seller statements: ``unsent`` maps an authority to (pending, failed);
    ``without`` lists the authorities with filed sellers and no statement recorded; ``laws``, the
    laws the filings' sellers receive their information under (:func:`statement_laws`). Counts
    only, never a seller."""
    total = sum(p + f for p, f in unsent.values())
    parts = [f"{total} seller statement(s) not delivered"] if total else []
    parts += [f"no statements recorded for {', '.join(without)}"] if without else []
    subject = f"DAC7 {year}: {'; '.join(parts)}"
    lines = [
        f"Each reportable seller must receive the information reported about them by {due.isoformat()} "
        f"({'; '.join(laws)}); warning from {warn.isoformat()}."
    ]
    for authority, (pending, failed) in sorted(unsent.items()):
        lines.append(f"Filed with {authority}: {pending} pending, {failed} failed (production statements of {year}).")
    if without:
        lines.append(
            f"Filed with {', '.join(without)}: the ledger holds production filings of {year} with sellers, but no "
            "statement for them: build the statements of that run and record them (statements.jsonl)."
        )
    lines.append(
        "What to do: have the platform deliver the pending and failed statements, then record its delivery "
        "report with `dac7 statements mark-sent --file REPORT`; `dac7 statements list --status failed` shows "
        "which failed. The warning repeats daily until the deadline."
    )
    return subject, "\n".join(lines)


def check_statements(year: int, today: date, config_path: str | Path, ledger_url: str | None = None) -> dict[str, Any]:
    """Warn (log WARNING and :func:`notify`) when, on or after the warning day of the
    ``seller_statement`` deadline, production statements of ``year`` are pending or failed, or
    the filing state's production filing has sellers and no statement is recorded.

    Returns counts only: ``{"year", "due", "unsent": {authority: n}, "without_statements": [...]}``."""
    from reporting.config import load_config
    from reporting.deadlines import statement_due
    from reporting.ledger import open_ledger
    from reporting.vocabulary import PROD

    config = load_config(config_path)
    filings = configured_filings(config)
    due = min(statement_due(a, year) for _op, a in filings)
    warn = warn_date(year + 1, due=due)
    if today < warn:
        return {"year": year, "due": False, "unsent": {}, "without_statements": []}
    url, note = _ledger_of(ledger_url, config.ledger)
    if note:
        log.info("DAC7 %s: no ledger yet, so no statements to check%s", year, note)
        return {"year": year, "due": True, "unsent": {}, "without_statements": []}
    with open_ledger(url, create=False) as ledger:
        counts = ledger.statement_counts(year=year, environment=PROD)
        # per filing (in a group, each operator's: a seller of two operators has a statement of each)
        filed = {
            _label(config, op, a): n
            for op in config.operator_ids
            for a, n in ledger.filed_sellers(PROD, year, operator_id=op).items()
        }
    unsent = {_label(config, c.operator_id, c.authority): (c.pending, c.failed) for c in counts if c.unsent}
    with_statements = {_label(config, c.operator_id, c.authority) for c in counts}
    without = sorted(a for a, n in filed.items() if n and a not in with_statements)
    if unsent or without:
        laws = statement_laws((a for _op, a in filings), year)
        subject, text = statements_message(year, unsent, without, warn, due, laws)
        notify(subject, text, level=logging.WARNING)
    else:
        log.info("DAC7 %s: every production statement is delivered", year)
    return {
        "year": year,
        "due": True,
        "unsent": {a: p + f for a, (p, f) in unsent.items()},
        "without_statements": without,
    }


def calendar_message(label: str, lines: list[str]) -> tuple[str, str]:
    """The warning about one filing's open calendar items (ids, counts and days; never a seller)."""
    subject = f"DAC7 {label}: {len(lines)} open item(s) of the calendar"
    text = "\n".join(
        [
            *lines,
            "What to do: a rejected record or message is corrected by the next production run of its year "
            "(dac7_annual, approved by a second person); `dac7 ledger list` shows the messages and their status. "
            "A filing not accepted yet needs the authority's status document imported (dac7 status-import or the "
            "board of the DAC7 view). The warning repeats daily while the item is open.",
        ]
    )
    return subject, text


def check_calendar(
    year: int | None, today: date, config_path: str | Path, ledger_url: str | None = None
) -> dict[str, Any]:
    """Warn (log WARNING and :func:`notify`), per operator's filing, about the calendar items that
    are due and not done (``reporting.open_items``): rejections not corrected (every year's, or
    ``year``'s), and a filing of ``year`` published but not accepted after its due day. A filing
    not published and unsent statements are the other two tasks'. No registration renewal is
    known for any profile, so none is warned about (``reporting.deadlines``: ``[XX.registration]``).

    ``today`` is the run's date; the authority's day of it is today's date (the DAG runs at 07:00
    UTC, the same day in every member state). Returns counts only."""
    from reporting.config import load_config
    from reporting.deadlines import correction_days, filing_due
    from reporting.ledger import open_ledger
    from reporting.open_items import DONE, OPEN, configured_correction_days, correction_state, filing_states
    from reporting.vocabulary import PROD

    config = load_config(config_path)
    window = configured_correction_days()
    url, note = _ledger_of(ledger_url, config.ledger)
    if note:
        log.info("DAC7: no ledger yet, so no calendar to check%s", note)
        return {"year": year, "rejections": {}, "not_accepted": []}
    rejections: dict[str, int] = {}
    not_accepted: list[str] = []
    with open_ledger(url, create=False) as ledger:
        every = ledger.rejections(environment=PROD, year=year)
        for op, authority in configured_filings(config):
            label = _label(config, op, authority)
            lines: list[str] = []
            days = correction_days(authority, window)
            states = [
                correction_state(r, today, days) for r in every if r.authority == authority and r.operator_id == op
            ]
            open_ = [s for s in states if s.state != DONE]
            for s in open_:
                r = s.rejection
                what = (
                    f"message {r.message_ref_id} ({r.year}) rejected as a whole: {r.open_records} of its "
                    f"{r.records} record(s) not filed again"
                    if r.whole_message
                    else f"record {r.doc_ref_id} of message {r.message_ref_id} ({r.year}) rejected"
                )
                when = f" on {s.rejected_on.isoformat()}" if s.rejected_on else ""
                if s.due is None:
                    due = "; the authority states no time: correct without delay"
                else:
                    due = f"; correction due {s.due.isoformat()} ({describe(s.due, today)})"
                lines.append(f"{what}{when}, not corrected{due}.")
            if open_:
                rejections[label] = len(open_)
            check_year = year if year is not None else today.year - 1
            if today > filing_due(authority, check_year):
                [filing] = [
                    s
                    for s in filing_states(
                        ledger, authority, check_year, today, operator_id=op, correction_window=window
                    )
                    if s.item.obligation == "filing"
                ]
                if filing.state == OPEN:  # filed, not accepted (nothing filed: check_deadline's warning)
                    not_accepted.append(label)
                    lines.append(f"The filing of {check_year} was due {filing.item.due}: {filing.detail}.")
            if lines:
                subject, text = calendar_message(label, lines)
                notify(subject, text, level=logging.WARNING)
    if not rejections and not not_accepted:
        log.info("DAC7: no open rejection, and every filing due is accepted")
    return {"year": year, "rejections": rejections, "not_accepted": not_accepted}


def describe(due: date, today: date) -> str:
    from reporting.deadlines import describe_days

    return describe_days(due, today)
