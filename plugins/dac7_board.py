"""The DAC7 view's deadline and status board, and the upload of an authority's status document.

The board (``/dac7/board``): one row per authority and reporting year, production first and the
test environment apart; for a group of operators, one row per operator, authority and year, so
that each entity's filing is seen on its own (a missing, rejected or late filing of one operator
is never hidden by another operator's filing in the same member state). Each production row has
its due day from the deadline table of the authority's profile (``reporting.deadlines``: one
table per profile, a source per row), the days left or overdue, and from the filing ledger what
was filed, accepted, partly rejected (an accepted message with rejected records, counted apart),
rejected, still waiting for the authority's status, and corrected (DPI402 messages). Filed means
sent, as for the calendar and the deadline warnings: transmitted to the DIP or marked uploaded
from the outbox, at the time it was sent (``Ledger.filed_times``, the ledger's one rule); a
message published and never sent is not filed, and its row reads open or overdue. Seller
statements have a column with how many were sent and how many are still unsent (pending or
failed; superseded ones aside), from the ledger's delivery record, or "none recorded". Rows come
from the ledger, and for the filing state (the member state the configuration named by
``DAC7_CONFIG`` files in; in a group, each operator's) also for the last ended year and the year
in progress, so that a filing not made yet shows as a row too.

The upload (``POST /dac7/status-import``, a multipart form on the board): the same size limit,
hardened parser and import as ``dac7 status-import`` (``reporting.ledger.status``), into the ledger
the view reads. Who may: see ``dac7_plugin.may_import``. Against cross-site requests (the login is
a cookie): the form carries a token, an HMAC of the user's Airflow token under the api-server's
secret key, checked on POST, and the request's Origin (or Referer) must be this server. The answer
says in words what was imported, or why nothing was; every import and every refusal is a log line
with the user and the document's sha256, never its content.

Like ``dac7_view``, Airflow imports this module in every process: its top level imports the
standard library, ``dac7_view`` and ``reporting.vocabulary`` (standard library only, both); the
rest of ``reporting`` and Starlette are imported inside the functions that use them, in the
api-server.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dac7_view import (
    PARTIALLY_REJECTED,
    LedgerUnavailable,
    Sources,
    _num,
    _page,
    _problems,
    _read_ledger,
    _table,
    authority_name,
    sources,
    status_outcomes,
)

from reporting.vocabulary import DEFAULT_OPERATOR, PROD, TEST  # a leaf of the standard library

if TYPE_CHECKING:
    from reporting.deadlines import Deadline
    from reporting.ledger import Ledger, MessageInfo
    from reporting.ledger.statements import StatementCounts
    from reporting.open_items import ItemState

log = logging.getLogger("dac7.view")

#: The resource that lets a user import status documents (FAB, Keycloak: grant ``GET`` on it;
#: the simple auth manager: the roles in IMPORT_ROLES).
IMPORT_RESOURCE = "DAC7 status import"
IMPORT_ROLES = frozenset({"OP", "ADMIN"})
IMPORT_REFUSED = (
    "Your Airflow login may see the DAC7 board, but not import status documents: that needs the "
    f"{IMPORT_RESOURCE!r} permission (with Airflow's simple auth manager, the role op or admin). "
    "Nothing was imported."
)
#: The form field names of the upload.
TOKEN_FIELD, FILE_FIELD = "csrf_token", "document"
#: Room for the multipart envelope around the document (boundaries, headers, the token field).
_ENVELOPE = 64 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

ENVIRONMENTS = {PROD: "Production", TEST: "Test environment"}

# ============================================================================ reading


@dataclass(frozen=True, slots=True)
class BoardRow:
    """What the ledger holds for one authority, reporting year and environment (in a group's
    board, of one operator)."""

    environment: str
    authority: str
    year: int
    filed: int = 0  # messages sent, or answered by the authority (whatever it said)
    accepted: int = 0  # accepted with every record
    partly_rejected: int = 0  # accepted, with records the authority rejected
    rejected_records: int = 0  # records rejected inside accepted messages
    open_rejected_records: int = 0  # of those, not corrected yet
    rejected: int = 0  # messages rejected as a whole
    awaiting: int = 0  # sent, no status document yet
    corrections: int = 0  # DPI402 messages sent
    not_published: int = 0  # rendered or discarded: never sent
    #: when the first message that still counts (sent, or accepted) was sent (naive UTC)
    first_filed: datetime | None = None
    error_codes: tuple[str, ...] = ()
    #: of the partly rejected messages, those whose status document named no rejected record
    unnamed_rejections: int = 0
    #: seller statements sent, from the ledger's delivery record: ``None`` when none is recorded
    statements_sent: int | None = None
    #: seller statements pending or failed (superseded ones aside); ``None`` when none is recorded
    statements_unsent: int | None = None
    #: the operator of a group whose filing this is (its id); ``None``: a single operator's board,
    #: every message of the environment, authority and year counted
    operator: str | None = None
    #: messages published and not sent yet (not transmitted, not marked uploaded): not filed
    unsent: int = 0

    @property
    def live(self) -> bool:
        """A filing counts: a message sent or accepted (not rejected as a whole)."""
        return self.first_filed is not None


@dataclass(frozen=True, slots=True)
class Board:
    today: date  # in UTC
    rows: tuple[BoardRow, ...]
    filing_state: str | None
    problems: tuple[str, ...] = ()
    #: the moment of the board (aware, UTC): each row's day is taken in its member state's time
    #: zone; ``None`` (a board for a given day) counts ``today`` as every state's day
    now: datetime | None = None
    #: each production row's calendar items with their states (``reporting.open_items``)
    calendar: tuple[ItemState, ...] = ()
    #: a group's operators by id: their names (the configuration's), for the Operator column
    operator_names: dict[str, str] = field(default_factory=dict)

    @property
    def per_operator(self) -> bool:
        """A group's board: a row per operator, and the Operator column."""
        return any(r.operator is not None for r in self.rows)

    @property
    def when(self) -> date | datetime:
        return self.now or self.today

    def of(self, environment: str) -> list[BoardRow]:
        return [r for r in self.rows if r.environment == environment]


@dataclass(frozen=True, slots=True)
class Tally:
    """A message's status document findings, read with it: the DocRefIds rejected in it."""

    message: MessageInfo
    rejected_doc_ref_ids: frozenset[str] = frozenset()
    codes: tuple[str, ...] = ()
    outcome: str = ""  # the latest status document's outcome, as the ledger keeps it
    #: when the message counts as filed (``Ledger.filed_times``: sent); None: not filed
    filed_at: datetime | None = None
    #: of its rejected records, those without a correction sent since (``Ledger.rejections``);
    #: None: not read, the records the ledger still holds as rejected are counted
    open_rejected_records: int | None = None

    @property
    def still_rejected(self) -> int:
        """The records of this message rejected and not corrected by a sent correction."""
        if self.open_rejected_records is None:
            return self.message.rejected_records
        return self.open_rejected_records

    @property
    def unnamed_rejection(self) -> bool:
        """Partially rejected, the ledger says, but no record named: which records stand is not known."""
        return (
            self.message.status == "accepted"
            and self.outcome == PARTIALLY_REJECTED
            and not (self.rejected_doc_ref_ids or self.message.rejected_records)
        )


def board_rows(
    tallies: Iterable[Tally],
    *,
    filing_state: str | None = None,
    years: Iterable[int] = (),
    operators: Sequence[tuple[str, str]] | None = None,
) -> list[BoardRow]:
    """The board's rows from the ledger's messages: one per environment, authority and year,
    plus an empty production row of the filing state for each of ``years`` without one. Sorted:
    production first, then the newest year, the filing state, the authority.

    ``operators`` (a group's board): each operator of the group with the member state it files
    in, the default operator first. The rows are then per operator too: one per environment,
    operator, authority and year, never two operators' messages in one row, and an empty
    production row of each operator's filing state for each of ``years`` without one. Sorted:
    production first, the newest year, the operators in the order given (an operator the ledger
    holds and ``operators`` does not, after them by id), each one's filing state first."""
    per_operator = operators is not None
    groups: dict[tuple[str, str | None, str, int], list[Tally]] = {}
    for t in tallies:
        m = t.message
        key = (m.environment, m.operator_id if per_operator else None, m.authority, m.reporting_year)
        groups.setdefault(key, []).append(t)
    years = tuple(years)
    expected: list[tuple[str | None, str]] = (
        list(operators or []) if per_operator else ([(None, filing_state)] if filing_state else [])
    )
    for operator, state in expected:
        for year in years:
            groups.setdefault((PROD, operator, state, year), [])
    rows = [_row(env, authority, year, of, operator) for (env, operator, authority, year), of in groups.items()]
    if not per_operator:
        return sorted(rows, key=lambda r: (r.environment != PROD, -r.year, r.authority != filing_state, r.authority))
    rank = {op: i for i, (op, _state) in enumerate(operators or [])}
    own_state = dict(operators or [])
    return sorted(
        rows,
        key=lambda r: (
            r.environment != PROD,
            -r.year,
            rank.get(r.operator or "", len(rank)),
            r.operator or "",
            r.authority != own_state.get(r.operator or "", filing_state),
            r.authority,
        ),
    )


def _row(environment: str, authority: str, year: int, tallies: list[Tally], operator: str | None = None) -> BoardRow:
    """One row: filed means sent (``Tally.filed_at``), as the calendar and the warnings count."""
    messages = [t.message for t in tallies]
    sent = [t for t in tallies if t.filed_at is not None and t.message.status in ("published", "accepted", "rejected")]
    filed = [t.message for t in sent]
    partial = [
        t
        for t in tallies
        if t.message.status == "accepted"
        and (t.rejected_doc_ref_ids or t.message.rejected_records or t.unnamed_rejection)
    ]
    live = [t.filed_at for t in sent if t.message.status in ("published", "accepted") and t.filed_at is not None]
    return BoardRow(
        environment=environment,
        authority=authority,
        year=year,
        filed=len(filed),
        accepted=sum(1 for m in messages if m.status == "accepted") - len(partial),
        partly_rejected=len(partial),
        rejected_records=sum(max(len(t.rejected_doc_ref_ids), t.message.rejected_records) for t in partial),
        open_rejected_records=sum(t.still_rejected for t in partial),
        rejected=sum(1 for m in messages if m.status == "rejected"),
        awaiting=sum(1 for m in filed if m.status == "published"),
        corrections=sum(1 for m in filed if m.message_type_indic == "DPI402"),
        not_published=sum(1 for m in messages if m.status in ("rendered", "discarded")),
        first_filed=min(live) if live else None,
        error_codes=tuple(sorted({c for t in tallies for c in t.codes})),
        unnamed_rejections=sum(1 for t in partial if t.unnamed_rejection),
        operator=operator,
        unsent=sum(1 for t in tallies if t.message.status == "published" and t.filed_at is None),
    )


def read_tallies(ledger: Ledger) -> list[Tally]:
    """Every message of the ledger, with the DocRefIds and codes of its status documents' errors,
    when it counts as filed (sent) and how many of its rejected records no sent correction fixed."""
    out = []
    outcomes = status_outcomes(ledger)
    filed = ledger.filed_times()
    still_open = Counter(r.message_ref_id for r in ledger.rejections() if not r.whole_message and not r.corrected)
    for m in ledger.messages():
        errors = ledger.errors(m.message_ref_id) if m.errors else []
        out.append(
            Tally(
                message=m,
                rejected_doc_ref_ids=frozenset(e.doc_ref_id for e in errors if e.scope == "record" and e.doc_ref_id),
                codes=tuple(sorted({e.code for e in errors if e.code})),
                outcome=outcomes.get(m.message_ref_id, ""),
                filed_at=filed.get(m.message_ref_id),
                open_rejected_records=still_open.get(m.message_ref_id, 0),
            )
        )
    return out


def board_view(src: Sources, today: date | None = None, env: Mapping[str, str] | None = None) -> Board:
    """The board as of ``today`` (a day), else as of now (each row on its member state's day),
    from the ledger and the configuration the view reads. A group's configuration
    (``[operators.ID]``), or a ledger that holds a further operator's messages, gives a board per
    operator (see :func:`board_rows`)."""
    env = os.environ if env is None else env
    now = None if today else datetime.now(UTC)
    today = today or now.date()  # type: ignore[union-attr]
    # the board reads the ledger and the configuration, not the output directory
    problems = [p for p in src.problems if "DAC7_OUT_DIR" not in p]
    filing_state = None
    group: list[tuple[str, str]] = []  # a group's operators, each with the member state it files in
    names: dict[str, str] = {}
    if env.get("DAC7_CONFIG"):
        from reporting.config import load_config
        from reporting.errors import ReportingError

        try:
            config = load_config(env["DAC7_CONFIG"])
            filing_state = config.operator.country
            if config.operators:
                each = {op: config.for_operator(op).operator for op in config.operator_ids}
                group = [(op, operator.country) for op, operator in each.items()]
                names = {op: operator.name for op, operator in each.items()}
        except (ReportingError, OSError) as exc:
            problems.append(f"The configuration named by DAC7_CONFIG cannot be read: {exc}")
    else:
        problems.append(
            "The filing state is not known (DAC7_CONFIG is not set in the api-server's environment): the board "
            "lists only the authorities with messages in the ledger, and no filing that is missing."
        )
    tallies: list[Tally] = []
    counts: list[StatementCounts] = []
    if src.ledger_url:
        try:
            tallies, counts = _read_ledger(
                src.ledger_url, lambda ledger: (read_tallies(ledger), ledger.statement_counts())
            )
        except LedgerUnavailable as exc:
            problems.append(str(exc))
    # per operator: a group's configuration, or a ledger with a further operator's messages (as
    # ``dac7 ledger list`` adds its operator column); the default operator's filing expected then
    operators: list[tuple[str, str]] | None = None
    if group or any(t.message.operator_id != DEFAULT_OPERATOR for t in tallies):
        operators = group or ([(DEFAULT_OPERATOR, filing_state)] if filing_state else [])
    statements: dict[tuple[str, str | None, str, int], tuple[int, int]] = {}
    for c in counts:  # a single operator's board: every operator's statements of a row added up
        key = (c.environment, c.operator_id if operators is not None else None, c.authority, c.year)
        sent, unsent = statements.get(key, (0, 0))
        statements[key] = (sent + c.sent, unsent + c.unsent)
    rows = [
        _with_statements(r, statements.get((r.environment, r.operator, r.authority, r.year)))
        for r in board_rows(tallies, filing_state=filing_state, years=(today.year - 1, today.year), operators=operators)
    ]
    items: list[ItemState] = []
    if src.ledger_url:
        from reporting.open_items import configured_correction_days

        try:
            window = configured_correction_days(env)
        except ValueError as exc:
            problems.append(f"{exc}: the calendar counts no correction window.")
            window = None
        # once per authority and year: a group's operators filing in one state share its calendar
        periods = list(
            dict.fromkeys((r.authority, r.year, local_today(r, now or today)) for r in rows if r.environment == PROD)
        )
        try:
            items = _read_ledger(src.ledger_url, lambda ledger: calendar_items(ledger, periods, window))
        except LedgerUnavailable as exc:
            problems.append(str(exc))
    return Board(
        today=today,
        rows=tuple(rows),
        filing_state=filing_state,
        problems=tuple(dict.fromkeys(problems)),
        now=now,
        calendar=tuple(items),
        operator_names=names,
    )


def calendar_items(ledger: Ledger, periods: Iterable[tuple[str, int, date]], window: int | None) -> list[ItemState]:
    """The calendar of each production (authority, year), every operator's filings together, each
    item's state on the authority's day given with it."""
    from reporting.open_items import filing_states

    out: list[ItemState] = []
    for authority, year, day in periods:
        out += filing_states(ledger, authority, year, day, correction_window=window)
    return out


def _with_statements(row: BoardRow, counts: tuple[int, int] | None) -> BoardRow:
    """The row with its seller statements' sent and unsent counts, when any is recorded."""
    if counts is None:
        return row
    from dataclasses import replace

    return replace(row, statements_sent=counts[0], statements_unsent=counts[1])


# ============================================================================ showing

#: The state of a row: (class, words); the class colours the badge.
OK, INFO, WARN, BAD, TODO = "accepted", "published", "warning", "rejected", "todo"
BOARD_CSS = """
.status-warning{background:#feebc8}.status-todo{background:#e2e8f0}
.result{border:1px solid #9ae6b4;background:#f0fff4;padding:.5rem .8rem;margin:.5rem 0}
.result.warning{border-color:#fbd38d;background:#fffaf0}
form.upload{border:1px solid #cbd5e0;padding:.6rem .8rem;display:inline-block;background:#f7fafc}
table#board-prod .status,table#board-test .status{white-space:nowrap}
"""


def local_today(row: BoardRow, today: date | datetime) -> date:
    """The day in the row's member state: ``today`` itself when it is a day, else the day of
    the moment in the state's time zone (31 January ends at 23:00 UTC in a state on CET)."""
    from reporting.deadlines import local_day

    return local_day(row.authority, today) if isinstance(today, datetime) else today


def state(row: BoardRow, due: date | None, today: date | datetime) -> tuple[str, str]:
    """The one-line state of a row, for the badge; ``today`` a day, or a moment (then the
    member state's day of it)."""
    today = local_today(row, today)
    unsent = f"{row.unsent} published, not sent yet" if row.unsent else ""
    if not row.live:  # nothing sent that counts: a message only published is no filing
        if row.rejected:
            return BAD, "rejected: file again" + (f" ({unsent})" if unsent else "")
        if due is not None and today > due:
            return BAD, "overdue: nothing filed" + (f" ({unsent})" if unsent else "")
        return TODO, unsent or "not filed yet"
    if row.open_rejected_records:
        n = row.open_rejected_records
        return WARN, f"warning: {n} record{'s' if n != 1 else ''} rejected"
    if row.unnamed_rejections:
        return WARN, "warning: partially rejected, records not named"
    if unsent:  # a correction or an addition published and not sent
        return WARN, f"warning: {unsent}"
    if row.awaiting:
        return INFO, "filed: awaiting the authority's status"
    return OK, "accepted"


def deadline_words(row: BoardRow, due: date, today: date | datetime) -> str:
    """Days left or overdue while nothing counts as filed; once filed, whether it was in time:
    the day it was first sent (transmitted to the DIP, or marked uploaded from the outbox) in the
    member state's time zone; not its publication, nor when the authority received it."""
    from reporting.deadlines import describe_days, local_day

    today = local_today(row, today)
    if row.first_filed is not None:
        filed = local_day(row.authority, row.first_filed)
        late = (filed - due).days
        return f"filed {filed.isoformat()}, " + (
            "in time" if late <= 0 else f"{late} day{'s' if late != 1 else ''} late"
        )
    if today.year <= row.year:
        return f"period in progress; {describe_days(due, today)}"
    return describe_days(due, today)


def board_page(
    board: Board,
    *,
    token: str | None = None,
    may_import: bool = False,
    result: ImportResult | None = None,
) -> str:
    """The board; with ``token`` (the user may import) the upload form, else a sentence why not;
    ``result``: what an upload just did, at the top."""
    from reporting.deadlines import deadline_for

    body = [
        '<nav><a href="./">All years</a></nav>',
        "<h1>DAC7 deadlines and statuses</h1>",
        f'<p class="muted">{"Per operator of the group, authority" if board.per_operator else "Per authority"} and '
        f"reporting year, as of {board.today.isoformat()} (UTC). Due days come "
        "from the deadline table of each authority's profile (sources below); the counts from the filing ledger "
        "and the authorities' status documents imported into it.</p>",
        '<p class="muted" id="time-zones">A due day ends at midnight in the member state (31 January ends at '
        "23:00 UTC in a state on Central European Time): due, overdue and filed in time are judged on the state's "
        "own day. Filed is when the file was sent: transmitted to the DIP, or marked uploaded from the outbox "
        "(as the calendar and the deadline warnings count it); a file published and not sent is not filed.</p>",
        *(_result(result) if result else []),
        *_problems(board.problems),
        '<p class="contents">On this page: <a href="#production">Production</a> <a href="#test">Test environment</a> '
        '<a href="#calendar">Calendar</a> <a href="#import">Import a status document</a> '
        '<a href="#sources">Where the due dates come from</a></p>',
        '<h2 id="production">Production</h2>',
        _production_table(board, deadline_for),
        '<h2 id="calendar">Calendar: what is due and what is open</h2>',
        '<p class="muted">Per authority and reporting year (production): the filing, the statements to sellers, the '
        "correction after a rejection and the registration renewal, each with the rule it follows and its source. "
        "Done: accepted, sent or corrected. Open: not done, not overdue yet (a rejection without a stated time "
        "stays open until corrected). Overdue: past its due day. A due day on a weekend moves only where a text "
        "says so (Germany: AO § 108(3); Italy: DL 70/2011 art. 7).</p>",
        _calendar_table(board),
        '<h2 id="test">Test environment</h2>',
        '<p class="muted">Test filings go to the authorities\' test services: they meet no deadline and are '
        "counted apart.</p>",
        _test_table(board),
        '<h2 id="import">Import a status document</h2>',
        *_upload_section(token, may_import),
        '<h2 id="sources">Where the due dates come from</h2>',
        _sources_table(board),
    ]
    # the view's style sheet, and the board's few additions beside it (inline styles are allowed)
    return _page("DAC7 deadlines and statuses", [f"<style>{BOARD_CSS}</style>", *body])


COLUMNS = (
    "Authority",
    "Year",
    "State",
    "Filed",
    "Accepted",
    "Partly rejected",
    "Rejected",
    "Awaiting status",
    "Corrections (DPI402)",
    "Error codes",
)


def _operator(board: Board, r: BoardRow) -> tuple[str, ...]:
    """The Operator cell of a group's board (its id, as the DAG's task labels name it: ``lt2 LT``,
    and its name); none on a single operator's board."""
    if not board.per_operator:
        return ()
    name = board.operator_names.get(r.operator or "")
    return (f"<b>{escape(r.operator or '')}</b>" + (f' <span class="muted">{escape(name)}</span>' if name else ""),)


def _headers(board: Board, headers: Sequence[str], numeric: Iterable[int]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """A group's board has the Operator column first: the other columns one place to the right."""
    if not board.per_operator:
        return tuple(headers), tuple(numeric)
    return ("Operator", *headers), tuple(i + 1 for i in numeric)


def _production_table(board: Board, deadline_for: Callable[..., Deadline]) -> str:
    from reporting.deadlines import due_day

    rows = []
    for r in board.of(PROD):
        filing = deadline_for(r.authority, r.year)
        due = due_day(r.authority, r.year)  # moved from a weekend where a text says so
        statements_due = due_day(r.authority, r.year, "seller_statement")
        sent = (
            '<span class="muted">none recorded</span>'
            if r.statements_sent is None
            else f"{_num(r.statements_sent)} sent, {_num(r.statements_unsent or 0)} unsent"
        )
        statements = f'{sent} <br>(due <span class="when">{statements_due.isoformat()}</span>)'
        rows.append(
            (
                *_operator(board, r),
                _authority(r.authority),
                escape(str(r.year)),
                f'<span class="when">{due.isoformat()}</span>'
                + (
                    f' <a class="muted" href="#sources" title="{escape(filing.note)}">(note)</a>' if filing.note else ""
                ),
                _dates(escape(deadline_words(r, due, board.when))),
                *_counts(r, due, board.when),
                statements,
            )
        )
    headers, numeric = _headers(
        board, (*COLUMNS[:2], "Due", "Deadline", *COLUMNS[2:], "Statements to sellers"), (1, 5, 6, 7, 8, 9, 10)
    )
    if not rows:
        return "<p>No production filing in the ledger, and no filing state to expect one for.</p>"
    return _table(headers, rows, table_id="board-prod", numeric=numeric)


#: A calendar item's state: the badge's class.
ITEM_CLASSES = {"done": OK, "open": TODO, "overdue": BAD, "nothing due": INFO}


def _calendar_table(board: Board) -> str:
    rows = []
    for s in board.calendar:
        i = s.item
        due = "" if i.due is None else f'<span class="when">{i.due.isoformat()}</span>'
        if i.unmoved is not None:
            due += f' <span class="muted">(from {i.unmoved.isoformat()})</span>'
        rows.append(
            (
                _authority(i.country),
                escape(str(i.year)),
                escape(i.obligation.replace("_", " ")),
                due or '<span class="muted">none</span>',
                f'<span class="status status-{ITEM_CLASSES[s.state]}">{escape(s.state)}</span>',
                _dates(escape(s.detail)),
                escape(f"{i.rule}; {i.time_zone}"),
                escape(i.source) + f' <span class="muted">({escape(i.certainty)})</span>',
            )
        )
    if not rows:
        return "<p>No production filing in the ledger, and no filing state to expect one for.</p>"
    headers = ("Authority", "Year", "Item", "Due", "State", "What the ledger says", "Rule and time zone", "Source")
    return _table(headers, rows, table_id="filing-calendar", numeric=(1,))


def _test_table(board: Board) -> str:
    rows = [
        (*_operator(board, r), _authority(r.authority), escape(str(r.year)), *_counts(r, None, board.today))
        for r in board.of(TEST)
    ]
    if not rows:
        return "<p>No test filing in the ledger.</p>"
    headers, numeric = _headers(board, COLUMNS, (1, 3, 4, 5, 6, 7, 8))
    return _table(headers, rows, table_id="board-test", numeric=numeric)


def _counts(r: BoardRow, due: date | None, today: date | datetime) -> tuple[str, ...]:
    kind, words = state(r, due, today)
    partly = _num(r.partly_rejected)
    if r.unnamed_rejections:
        partly += ' <span class="muted">(records not named by the authority)</span>'
    if r.rejected_records:
        n = r.rejected_records
        partly += f' <span class="muted">({_num(n)} record{"s" if n != 1 else ""} rejected'
        fixed = r.rejected_records - r.open_rejected_records
        partly += f", {_num(fixed)} corrected since)</span>" if fixed > 0 else ")</span>"
    filed = _num(r.filed) + (
        f' <span class="muted" title="published: not transmitted, not marked uploaded">'
        f"(+{_num(r.unsent)} published, not sent)</span>"
        if r.unsent
        else ""
    )
    filed += (
        f' <span class="muted" title="rendered or discarded: never sent">'
        f"(+{_num(r.not_published)} not published)</span>"
        if r.not_published
        else ""
    )
    return (
        f'<span class="status status-{kind}">{escape(words)}</span>',
        filed,
        _num(r.accepted),
        partly,
        _num(r.rejected),
        _num(r.awaiting),
        _num(r.corrections),
        escape(", ".join(r.error_codes)) or '<span class="muted">none</span>',
    )


def _dates(text: str) -> str:
    """Dates in a text kept on one line."""
    return _DATE.sub(lambda m: f'<span class="when">{m[0]}</span>', text)


def _authority(code: str) -> str:
    """The authority's cell: its code and country (``LT Lithuania``); a jurisdiction outside the EU
    also names its authority and law as its profile of the deadline table does (``GB United
    Kingdom, HM Revenue & Customs (HMRC): OECD Model Rules``), so that a filing with HMRC is never
    read as a member state's."""
    from reporting.countries import COUNTRY_NAMES

    name = authority_name(code) or COUNTRY_NAMES.get(code)
    return f"<b>{escape(code)}</b>" + (f" {escape(name)}" if name else "")


def _sources_table(board: Board) -> str:
    from reporting.deadlines import deadline_table, profile_of

    used = {profile_of(r.authority) for r in board.rows} or set(deadline_table())
    rows = []
    for code, table in deadline_table().items():
        if code not in used:
            continue
        for d in table.rows:
            years = "every year" if d.from_year is None and d.to_year is None else f"{d.from_year}–{d.to_year}"
            rows.append(
                (
                    escape(table.name),
                    escape(d.obligation.replace("_", " ")),
                    escape(f"{d.due} of the year after the period" if d.years_after == 1 else d.due),
                    escape(years),
                    escape(d.source),
                    escape(d.certainty),
                    escape(d.note or ""),
                )
            )
    return _table(
        ("Profile", "Obligation", "Due", "Reporting years", "Source", "Certainty", "Note"), rows, table_id="deadlines"
    )


def _upload_section(token: str | None, may_import: bool) -> list[str]:
    from reporting.ledger.status import MAX_STATUS_BYTES

    intro = (
        '<p class="muted">An authority\'s answer to a message: the EU DAC7 status message or the BZSt DIP '
        "protocol. It is read as <code>dac7 status-import</code> reads it, and applied to its message in the "
        "ledger; importing the same document twice changes nothing.</p>"
    )
    if not may_import or token is None:
        return [intro, f'<p id="import-refused">{escape(IMPORT_REFUSED.removesuffix(" Nothing was imported."))}</p>']
    return [
        intro,
        '<form class="upload" id="status-import" method="post" action="status-import" enctype="multipart/form-data">'
        f'<input type="hidden" name="{TOKEN_FIELD}" value="{escape(token)}">'
        f"<label>Status document (XML, at most {_size(MAX_STATUS_BYTES)}): "
        f'<input type="file" name="{FILE_FIELD}" accept=".xml,application/xml,text/xml" required></label> '
        '<button type="submit">Import</button></form>',
    ]


# ============================================================================ the upload


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an upload did, in words for the page: ``kind`` ``ok``, ``warning`` or ``refused``."""

    kind: str
    title: str
    lines: tuple[str, ...] = ()
    status_code: int = 200


def _result(result: ImportResult) -> list[str]:
    cls = {"ok": "result", "warning": "result warning"}.get(result.kind, "problem")
    items = "".join(f"<li>{escape(line)}</li>" for line in result.lines)
    return [
        f'<div class="{cls}" id="import-result" role="status"><b>{escape(result.title)}</b>'
        + (f"<ul>{items}</ul>" if items else "")
        + "</div>"
    ]


def form_token(secret: str, session_token: str) -> str:
    """The upload form's token: an HMAC of the user's Airflow token (the ``_token`` cookie or the
    bearer token) under the api-server's secret key. A page of another site cannot read it."""
    return hmac.new(secret.encode(), b"dac7-status-import\x00" + session_token.encode(), hashlib.sha256).hexdigest()


def token_ok(secret: str, session_token: str | None, sent: str | None) -> bool:
    if not session_token or not sent:
        return False
    return hmac.compare_digest(form_token(secret, session_token), sent)


def same_origin(headers: Mapping[str, str], hosts: Iterable[str]) -> bool:
    """Whether the request comes from a page of this server: its ``Origin`` (else ``Referer``)
    names one of ``hosts`` (``host[:port]`` as the browser addressed the server). A request with
    neither is refused: browsers send ``Origin`` with every form POST."""
    allowed = {h.lower() for h in hosts if h}
    origin = headers.get("origin")
    if origin and origin != "null":
        return urlsplit(origin).netloc.lower() in allowed
    referer = headers.get("referer")
    if referer:
        return urlsplit(referer).netloc.lower() in allowed
    return False


def session_token(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The Airflow token the request authenticated with, as Airflow's ``get_user`` reads it."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return cookies.get("_token")


def safe_name(name: str | None) -> str:
    """The uploaded file's own name, without a path, in safe characters (recorded in the ledger)."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = _SAFE_NAME.sub("_", base).strip("._")[:100]
    return cleaned or "status.xml"


class _TooLarge(Exception):
    pass


async def status_import(
    request: Any,
    user: str,
    *,
    allowed: bool,
    secret: str,
    src: Sources | None = None,
    hosts: Iterable[str] = (),
    today: date | None = None,
) -> tuple[int, str]:
    """The answer to the upload form: the HTTP status and the page (the board with what the
    upload did at its top). ``request`` is Starlette's; ``user`` the Airflow user's name (for the
    log); ``allowed``: whether the user may import; ``hosts``: the ``host[:port]`` this server
    answers as, besides the request's own Host."""
    from starlette.concurrency import run_in_threadpool

    src = src or sources()
    result, may = await _receive_and_import(request, user, allowed=allowed, secret=secret, src=src, hosts=hosts)
    board = await run_in_threadpool(board_view, src, today)
    token = form_token(secret, session_token(request.headers, request.cookies) or "") if may else None
    return result.status_code, board_page(board, token=token, may_import=may, result=result)


async def _receive_and_import(
    request: Any, user: str, *, allowed: bool, secret: str, src: Sources, hosts: Iterable[str]
) -> tuple[ImportResult, bool]:
    from reporting.ledger.status import MAX_STATUS_BYTES

    if not allowed:
        log.warning("DAC7 status import refused: user %s has no import permission", user)
        return ImportResult("refused", "Nothing was imported.", (IMPORT_REFUSED,), 403), False
    own = [request.headers.get("host", ""), request.headers.get("x-forwarded-host", ""), *hosts]
    if not same_origin(request.headers, own):
        log.warning("DAC7 status import refused: the request of user %s came from another page", user)
        return _refused(
            "The upload did not come from the DAC7 board of this Airflow (its Origin or Referer names another "
            "site, or none): open the board and upload from there.",
            403,
        ), True
    limit = MAX_STATUS_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _ENVELOPE:
        log.warning("DAC7 status import refused: user %s sent %s bytes", user, declared)
        return _too_large(limit), True
    try:
        token, name, data = await _read_form(request, limit + _ENVELOPE)
    except _TooLarge:
        log.warning("DAC7 status import refused: user %s sent more than %s bytes", user, limit + _ENVELOPE)
        return _too_large(limit), True
    except ValueError as exc:
        return _refused(
            f"The upload could not be read as a form ({exc}). Choose the file again and import it.", 400
        ), True
    if not token_ok(secret, session_token(request.headers, request.cookies), token):
        log.warning("DAC7 status import refused: user %s sent no valid form token", user)
        return _refused(
            "The upload form has expired or was not made for your login (your login was renewed, or the form "
            "came from elsewhere): nothing was imported. Open the board again and repeat the upload.",
            403,
        ), True
    if data is None or not data:
        return _refused(
            "No status document was chosen (or the file is empty): choose an XML file and import it.", 400
        ), True
    if len(data) > limit:
        return _too_large(limit), True
    if not src.ledger_url:
        return _refused("No ledger is configured for the DAC7 view, so there is nothing to import into.", 503), True
    from starlette.concurrency import run_in_threadpool

    digest = hashlib.sha256(data).hexdigest()
    result = await run_in_threadpool(_import, src.ledger_url, data, name, user, digest)
    return result, True


async def _read_form(request: Any, cap: int) -> tuple[str | None, str, bytes | None]:
    """The token, the file's name and bytes of the multipart form, reading at most ``cap`` bytes
    of the body (``_TooLarge`` beyond)."""
    from starlette.formparsers import MultiPartException
    from starlette.requests import Request

    received = 0

    async def receive() -> Any:
        nonlocal received
        message = await request.receive()
        if message.get("type") == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                raise _TooLarge
        return message

    capped = Request(request.scope, receive)
    if not capped.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ValueError("it is not multipart/form-data")
    try:
        async with capped.form(max_files=1, max_fields=4) as form:
            token = form.get(TOKEN_FIELD)
            upload = form.get(FILE_FIELD)
            if upload is None or isinstance(upload, str):
                return (token if isinstance(token, str) else None), "", None
            data = await upload.read()
            return (token if isinstance(token, str) else None), safe_name(upload.filename), data
    except MultiPartException as exc:
        raise ValueError(str(exc)) from None


def _import(url: str, data: bytes, name: str, user: str, digest: str) -> ImportResult:
    from sqlalchemy.exc import SQLAlchemyError

    from reporting.errors import ReportingError
    from reporting.ledger import open_ledger
    from reporting.ledger.status import import_status_bytes

    try:
        with open_ledger(url, create=False) as ledger:
            outcome = import_status_bytes(ledger, data, name=name)
            message = ledger.message(outcome.message_ref_id)
            records = ledger.records(outcome.message_ref_id)
            codes = sorted({e.code for e in ledger.errors(outcome.message_ref_id) if e.code})
    except ReportingError as exc:
        log.warning("DAC7 status import refused for %s: document sha256 %s: %s", user, digest, _first_line(exc))
        return _refused(f"Nothing was imported: {_first_line(exc)}", 422)
    except SQLAlchemyError as exc:
        reason = _first_line(getattr(exc, "orig", None) or exc)
        log.warning("DAC7 status import failed for %s: document sha256 %s: the ledger: %s", user, digest, reason)
        return _refused(f"Nothing was imported: the ledger could not be written ({reason}).", 503)
    log.info(
        "DAC7 status import by %s: document sha256 %s, message %s, %s%s",
        user,
        digest,
        outcome.message_ref_id,
        outcome.outcome,
        " (already imported, nothing changed)" if outcome.already_imported else "",
    )
    return describe_import(outcome, message, records, codes, digest)


def describe_import(
    outcome: Any, message: MessageInfo, records: Sequence[Any], codes: Sequence[str], digest: str
) -> ImportResult:
    """The import's outcome in words: the message, what the authority said, the records now."""
    env = ENVIRONMENTS.get(message.environment, message.environment).lower()
    about = (
        f"Message {message.message_ref_id} ({message.authority}, {message.reporting_year}, {env}, "
        f"{message.message_type_indic})"
    )
    statuses = Counter(r.status for r in records)
    now = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    code_line = f"Error codes from the authority: {', '.join(codes)}." if codes else "The authority reported no error."
    if outcome.already_imported:
        return ImportResult(
            "ok",
            "This status document was already imported: nothing changed.",
            (f"{about} is {message.status}; its records: {now}.", code_line, f"Document sha256 {digest}."),
        )
    lines = []
    if outcome.outcome == "rejected":
        kind, title = "warning", f"Imported: the authority rejected {message.message_ref_id} as a whole."
        lines.append(
            f"{about}: none of its records counts as filed; what it corrected or deleted stands again. File again."
        )
    elif outcome.rejected_doc_ref_ids:
        n = len(outcome.rejected_doc_ref_ids)
        kind = "warning"
        title = (
            f"Imported: the authority accepted {message.message_ref_id} but rejected {n} record{'s' if n != 1 else ''}."
        )
        shown = ", ".join(outcome.rejected_doc_ref_ids[:10]) + (" ..." if n > 10 else "")
        lines.append(f"{about}: rejected DocRefIds {shown}. The next run sends them again as corrections.")
    elif outcome.outcome == "partially_rejected":
        kind, title = "warning", f"Imported: the authority rejected part of {message.message_ref_id}."
        lines.append(f"{about}: the document names no record, so no record was marked rejected.")
    else:
        kind, title = "ok", f"Imported: the authority accepted {message.message_ref_id}."
        lines.append(f"{about}: every record accepted.")
    lines.append(f"The message is now {message.status}; its records: {now}.")
    lines.append(code_line)
    lines += (
        [f"Named by the authority but not in this message: {', '.join(outcome.unmatched_doc_ref_ids[:10])}."]
        if outcome.unmatched_doc_ref_ids
        else []
    )
    lines += [f"Note: {n}" for n in outcome.notes]
    lines.append(f"Document sha256 {digest}.")
    return ImportResult(kind, title, tuple(lines))


def _refused(text: str, status_code: int) -> ImportResult:
    return ImportResult("refused", "Nothing was imported.", (text,), status_code)


def _too_large(limit: int) -> ImportResult:
    return _refused(
        f"The document is larger than {_size(limit)}, the most a status document may have: it was not read.",
        413,
    )


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n // (1024 * 1024)} MB"
    return f"{n // 1024} KB" if n >= 1024 else f"{n} bytes"


def _first_line(exc: object) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__
