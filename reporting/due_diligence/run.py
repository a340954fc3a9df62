"""The daily due-diligence run of one operator: the source and the ledger's state in, the state's
changes, their events and the feed of the actions due out.

    result = run_due_diligence(config, source_url=url, ledger=ledger, today=date(2026, 3, 2),
                               out_dir=Path("out"), work_root=Path(".dac7/staging"),
                               now=datetime.now(UTC), run_id="...")

Set-based from end to end (DuckDB over files in a private work folder, memory bounded by
``DAC7_DUCKDB_MEMORY``, spilling beyond it): the source's identity tables are read a batch at a
time and reduced on the way to digests and flags (no value of an item is kept), the period's
activity is summed by the source's engine (the filing's aggregation), the ledger's state is read
in batches, and each step is one query of ``sql/due_diligence_*.sql``:

1. scope (``due_diligence_scope.sql``): active in the period so far and not excluded, as the
   rules decide it (:mod:`reporting.due_diligence.scope`);
2. items (``due_diligence_items.sql``): each item's state from the source's digests and the
   ledger's verifications;
3. cycle (``due_diligence_cycle.sql``): the request cycle advanced to the run's day;
4. state and events (``due_diligence_state.sql``, ``due_diligence_events.sql``): the rows that
   changed, and what changed, written to the ledger in one transaction;
5. actions (``due_diligence_actions.sql``): the feed ``due_diligence/actions.jsonl``
   (:mod:`reporting.due_diligence.feed`).

Incremental: a seller whose row is what it was (its source digests, its scope, its cycle) is
neither written nor given an event; a run reads every row, writes only the changes. The run's day
is the day whose actions it computes; the payments and refunds it reads are those up to the end of
the day before (a day that has ended: a rerun of the day reads the same). A run for a day before
the operator's last run is refused (it would move the state back); a rerun of the same day
recomputes it and changes nothing that did not change in the source.

Nothing is ever sent to a seller from here: the feed is for the platform's messaging and account
systems, which report back what they did (``dac7 due-diligence mark``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import sqlalchemy as sa

import reporting.ledger.schema as t
from reporting.config import Config
from reporting.diligence_cycle import (
    LAST_MEASURE_DAY,
    RELY_MONTHS,
    REMINDER_1_LATEST_DAY,
    REMINDER_2_LATEST_DAY,
    CycleSettings,
)
from reporting.due_diligence.feed import feed_path, write_feed
from reporting.due_diligence.scope import limits, screening_rates, under_limit
from reporting.due_diligence.source import TABLE_COLUMNS, TOTALS_SCHEMA, SourceReader
from reporting.errors import ConfigError, PermanentError, database_errors
from reporting.jurisdictions import rule_set_for
from reporting.ledger import Ledger
from reporting.ledger.due_diligence import (
    KEY_COLUMNS,
    STATE_COLUMNS,
    last_run_date,
    settings_json,
    state_keys,
    state_rows,
    write_run,
)
from reporting.period import Period, local_midnight_utc
from reporting.private import owner_only, private_dirs
from reporting.pushdown import OperatorFilter, source_totals_sql
from reporting.rules import DE_MINIMIS_MAX_SALES, MAX_RENTALS_PER_LISTING
from reporting.source import sql_text
from reporting.stages.aggregate import listing_keys_sql
from reporting.staging import duckdb_config, sql_literal
from reporting.variants import reading_for
from reporting.vocabulary import (
    DEFAULT_OPERATOR,
    DUE_DILIGENCE_ACTIONS,
    DUE_DILIGENCE_ITEMS,
    GOODS,
    IN_SCOPE,
    ITEM_INVALID,
    ITEM_MISSING,
    MEASURES,
    NOT_ACTIVE,
    PRE_REPORT_NOTICE,
    PROPERTY,
    RELEASE,
    REMINDER_1,
    REMINDER_2,
    REQUEST,
)

log = logging.getLogger(__name__)

#: Rows per write to the ledger (one transaction for the whole run).
WRITE_BATCH = 10_000


class DueDiligenceRunError(PermanentError):
    """A due-diligence run that cannot be made as asked (a day before the last run, a source the
    run cannot read); the message says what to do."""


@dataclass(frozen=True, slots=True)
class DueDiligenceResult:
    """What a run did: counts and where the feed is (no personal data)."""

    operator_id: str
    date: date
    sellers: int  # sellers with a state after the run
    in_scope: int
    changed: int  # state rows written
    events: int
    actions: dict[str, int]
    feed: str
    feed_sha256: str
    seconds: float
    inactive_sellers_unknown: int = 0  # sellers with activity that the sellers table lacks
    registered_at_unread: int = 0  # sellers whose registered_at is not a date (read as unknown)
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step, for the benchmark

    def as_dict(self) -> dict[str, Any]:
        return {
            "operator_id": self.operator_id,
            "date": self.date.isoformat(),
            "sellers": self.sellers,
            "in_scope": self.in_scope,
            "changed": self.changed,
            "events": self.events,
            "actions": dict(self.actions),
            "feed": self.feed,
            "feed_sha256": self.feed_sha256,
            "seconds": round(self.seconds, 2),
            "sellers_unknown": self.inactive_sellers_unknown,
            "registered_at_unread": self.registered_at_unread,
            "steps": {k: round(v, 2) for k, v in self.steps.items()},
        }


@database_errors("due diligence")  # DuckDB's words without the values they quote
def run_due_diligence(
    config: Config,
    *,
    source_url: str,
    ledger: Ledger,
    today: date,
    out_dir: Path,
    work_root: Path,
    now: datetime,
    run_id: str,
    operator_id: str = DEFAULT_OPERATOR,
) -> DueDiligenceResult:
    """Compute one operator's due diligence for ``today`` and write the state's changes and the
    feed (see the module). ``now`` is the instant the run records its writes at (the caller's
    clock); ``run_id`` names the run in the lock and the events."""
    started = time.perf_counter()
    if config.spark is not None:
        raise ConfigError(
            "the due-diligence run reads a database source ([source] url or --source); a source read by "
            "Apache Spark ([source.spark]) is not supported by it yet"
        )
    mine = config.for_operator(operator_id)
    with ledger.due_diligence_lock(operator_id, holder=run_id):
        last = last_run_date(ledger.engine, operator_id)
        if last is not None and today < last:
            raise DueDiligenceRunError(
                f"the due-diligence state of operator {operator_id} was computed for {last} already; a run for "
                f"{today} would move it back: run for {last} or a later day"
            )
        work = private_dirs(Path(work_root) / f"due-diligence-{operator_id}-{today}-{uuid.uuid4().hex[:8]}")
        try:
            with owner_only():
                return _run(mine, source_url, ledger, today, Path(out_dir), work, now, run_id, operator_id, started)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _run(
    config: Config,
    source_url: str,
    ledger: Ledger,
    today: date,
    out_dir: Path,
    work: Path,
    now: datetime,
    run_id: str,
    operator_id: str,
    started: float,
) -> DueDiligenceResult:
    zone = ZoneInfo(config.reporting.timezone)
    variant = reading_for(config.operator.country)
    as_of = today - timedelta(days=1)  # the last day that has ended
    period = Period(today.year, config.reporting.timezone, as_of)
    con = duckdb.connect(":memory:", config=duckdb_config(work))  # spills to the work folder
    clock = _Clock()
    try:
        macros(con)
        with SourceReader(source_url) as source:
            scope_filter = OperatorFilter(operator_id, config.operator_ids, source.has_operator_column())
            for table, name, sql in (
                ("sellers", "src_sellers_read", "due_diligence_sellers.sql"),
                ("seller_tins", "src_tins", "due_diligence_tins.sql"),
                ("seller_permanent_establishments", "src_pes", "due_diligence_permanent_establishments.sql"),
                ("property_listings", "src_listings", "due_diligence_listings.sql"),
            ):
                with source.table(table) as reader, _stream(con, f"reader_{table}", reader, text_schema(table)):
                    con.execute(f"create table {name} as {sql_text(sql)}")
                clock.step(f"read {table}")
            ids = con.execute("select count(*) - count(distinct seller_id) from src_sellers_read").fetchone()
            if ids and ids[0]:  # a seller_id twice: one row of each, the same on every run
                con.execute(f"create table src_sellers as {sql_text('due_diligence_distinct_sellers.sql')}")
            else:
                con.execute("alter table src_sellers_read rename to src_sellers")
            listings = text_schema("property_listings")
            with source.table("property_listings") as reader, _stream(con, "reader_listing_keys", reader, listings):
                con.execute(
                    "create view property_listings as select dd_clean(listing_id) as listing_id, "
                    "dd_clean(seller_id) as seller_id, address_street, address_building, address_post_code, "
                    "address_city, address_country, nullif(dd_clean(owner_id), '') as owner_id from reader_listing_keys"
                )
                # the listings as the filing merges them (DAC7: one owner's units; the Model Rules: any owner's)
                same_owner = rule_set_for(config.operator.country).listing_same_owner
                con.execute(f"create table listing_keys as {listing_keys_sql(same_owner=same_owner)}")
                con.execute("drop view property_listings")
            clock.step("listing keys")
            if config.aggregate == "source":  # the source's engine sums the period's payments
                with (
                    source.totals(period, scope_filter) as reader,
                    _stream(con, "reader_totals", reader, TOTALS_SCHEMA),
                ):
                    con.execute(
                        "create table totals as select dd_clean(seller_id) as seller_id, "
                        "dd_clean(activity) as activity, coalesce(dd_clean(listing_id), '') as listing_id, "
                        "upper(dd_clean(currency)) as currency, activities, amount_minor "
                        "from reader_totals where dd_clean(seller_id) is not null"
                    )
            else:  # read as the extract reads them, summed here with the same query
                source.period_rows(period, scope_filter, work)
                totals = source_totals_sql(
                    period,
                    payment_date_rates=False,
                    staged=True,
                    transactions=f"read_parquet({sql_literal(work / 'transactions.parquet')})",
                    refunds=f"read_parquet({sql_literal(work / 'refunds.parquet')})",
                )
                con.execute(
                    "create table totals as select seller_id, activity, coalesce(listing_id, '') as listing_id, "
                    "currency, cast(sum(activities) as bigint) as activities, "
                    f"cast(sum(amount_minor) as bigint) as amount_minor from ({totals}) as t "
                    "where seller_id is not null group by all"
                )
            clock.step("activity")
            with source.table("fx_rates") as reader, _stream(con, "reader_fx_rates", reader, text_schema("fx_rates")):
                rates_rows = con.execute("select currency, rate_date, units_per_eur from reader_fx_rates").fetchall()
        rates = screening_rates(rates_rows, as_of, variant)
        _scope(con, limits(rates, variant), rates, variant)
        clock.step("scope")
        params = _params(config, today, now, zone, run_id, operator_id)
        with state_keys(ledger.engine, operator_id) as reader, _stream(con, "reader_keys", reader, _KEYS):
            con.execute(
                "create table state_keys as select seller_id, nullif(fingerprint, '') as fingerprint, scope, "
                "cast(period as integer) as period, try_cast(nullif(reverify_on, '') as date) as reverify_on, "
                "open = '1' as open from reader_keys"
            )
        con.execute(f"create table sources as {_sources_sql()}", _pick(params, "property", "not_active"))
        con.execute(
            f"create table candidates as {sql_text('due_diligence_candidates.sql')}", _pick(params, "period", "today")
        )
        clock.step("fingerprints")
        _read_state(con, ledger, operator_id)
        clock.step("read the state")
        con.execute(f"create table items as {_items_sql()}", _pick(params, "today", "rely"))
        clock.step("items")
        con.execute(f"create view cycle_in as {_cycle_in_sql()}")
        schedule(con, today, config.due_diligence)
        clock.step("cycle and actions")
        con.execute(
            f"create table new_state as {_state_sql()}",
            _pick(params, "operator_id", "period", "today", "now"),
        )
        con.execute(
            f"create table events as {_events_sql()}",
            _pick(params, "operator_id", "period", "at", "source", "now"),
        )
        clock.step("state and events")
        changed = _count(con, "select count(*) from new_state where is_changed")
        n_events = _count(con, "select count(*) from events")
        # every seller with a state after the run: the candidates as computed, the others as they stood
        sellers = _count(
            con, "select count(*) from (select seller_id from state_keys union select seller_id from new_state)"
        )
        in_scope = _count(
            con,
            "select (select count(*) from new_state where scope = $s) + (select count(*) from state_keys as k "
            "anti join candidates as c on c.seller_id = k.seller_id where k.scope = $s)",
            {"s": IN_SCOPE},
        )
        unknown = _count(
            con,
            "select count(distinct t.seller_id) from totals as t "
            "anti join src_sellers as s on s.seller_id = t.seller_id",
        )
        unread = _count(con, "select count(*) from src_sellers where registered_at_unread")
        actions = dict(con.execute("select action, count(*) from actions group by action order by action").fetchall())
        rows_cursor, events_cursor = con.cursor(), con.cursor()  # two streams at once: a cursor each
        try:
            write_run(
                ledger.engine,
                rows_cursor.sql(f"select {', '.join(STATE_COLUMNS)} from new_state where is_changed").to_arrow_reader(
                    WRITE_BATCH
                ),
                events_cursor.sql(
                    'select operator_id, seller_id, "at", kind, detail, source, recorded from events'
                ).to_arrow_reader(WRITE_BATCH),
                {
                    "operator_id": operator_id,
                    "run_date": today,
                    "run_id": run_id[:100],
                    "finished": _naive_utc(now),
                    "sellers": sellers,
                    "in_scope": in_scope,
                    "changed": changed,
                    "events": n_events,
                    "actions": _json({a: int(n) for a, n in actions.items()}),
                    "feed_sha256": None,
                    "settings": settings_json(config.due_diligence, config.reporting.timezone),
                },
                config.due_diligence,
            )
        finally:
            rows_cursor.close()
            events_cursor.close()
        clock.step("write the ledger")
        target = feed_path(out_dir, operator_id)
        digest = write_feed(con, target, operator_id)
        with ledger.engine.begin() as conn:
            r = t.due_diligence_runs
            conn.execute(
                sa.update(r).where(r.c.operator_id == operator_id, r.c.run_date == today).values(feed_sha256=digest)
            )
        clock.step("write the feed")
    finally:
        con.close()
    result = DueDiligenceResult(
        operator_id=operator_id,
        date=today,
        sellers=sellers,
        in_scope=in_scope,
        changed=changed,
        events=n_events,
        actions={a: int(n) for a, n in actions.items()},
        feed=str(target),
        feed_sha256=digest,
        seconds=time.perf_counter() - started,
        inactive_sellers_unknown=unknown,
        registered_at_unread=unread,
        steps=dict(clock.steps),
    )
    if unknown:
        log.warning(
            "due diligence %s: %s seller(s) with activity in the period are not in the sellers table (no state)",
            operator_id,
            unknown,
        )
    if unread:
        log.warning(
            "due diligence %s: sellers.registered_at of %s seller(s) is not a date; read as unknown (not pre-existing)",
            operator_id,
            unread,
        )
    log.info("due diligence %s %s: %s", operator_id, today, result.as_dict())
    return result


# ------------------------------------------------------------------------------------ the steps


class _Clock:
    """Seconds per step of a run (what the benchmark prints)."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self._last = time.perf_counter()

    def step(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = self.steps.get(name, 0.0) + now - self._last
        self._last = now


#: The characters Python's ``str.strip()`` removes (``str.isspace``), as a class of RE2, DuckDB's
#: regular expressions: the extract cleans a text with ``strip()``, the run as it does.
WHITE_SPACE = r"[\t\n\x{0b}\f\r\x{1c}-\x{1f}\x{85}\p{Z}]"


def macros(con: duckdb.DuckDBPyConnection) -> None:
    """dd_clean: trimmed as the extract trims (Python's white space), '' as null; dd_flag: a
    boolean as any database writes it; dd_digest: the first 16 hex digits of a SHA-256; dd_json,
    dd_day: a text and a day as the feed's JSON writes them."""
    con.execute(
        f"create macro dd_clean(x) as nullif(regexp_replace(x, '^{WHITE_SPACE}+|{WHITE_SPACE}+$', '', 'g'), '')"
    )
    con.execute("create macro dd_flag(x) as coalesce(lower(dd_clean(x)) in ('1', 'true', 't', 'yes', 'y'), false)")
    con.execute("create macro dd_digest(x) as substr(sha256(x), 1, 16)")
    # a text as JSON, as Python's json.dumps writes it (DuckDB writes nine control characters'
    # escapes in capitals: \u000B, where Python writes \u000b)
    lower = "cast(to_json(x) as varchar)"
    for code in ("0B", "0E", "0F", "1A", "1B", "1C", "1D", "1E", "1F"):
        lower = f"replace({lower}, '\\u00{code}', '\\u00{code.lower()}')"
    con.execute(f"create macro dd_json(x) as {lower}")
    con.execute("create macro dd_day(d) as coalesce('\"' || strftime(d, '%Y-%m-%d') || '\"', 'null')")


_DUCKDB_TYPES = {pa.string(): "varchar", pa.int64(): "bigint"}
_KEYS = pa.schema([(c, pa.string()) for c in KEY_COLUMNS])


@contextmanager
def _stream(con: duckdb.DuckDBPyConnection, name: str, reader: Any, schema: pa.Schema) -> Iterator[None]:
    """A view ``name`` over a stream of batches, its columns those of ``schema`` with their types
    (however the driver typed them: an empty result has no rows to infer a type from)."""
    raw = f"{name}_raw"
    con.register(raw, reader)
    casts = ", ".join(f"cast({f.name} as {_DUCKDB_TYPES[f.type]}) as {f.name}" for f in schema)
    con.execute(f"create view {name} as select {casts} from {raw}")
    try:
        yield
    finally:
        con.execute(f"drop view {name}")
        con.unregister(raw)


def _read_state(con: duckdb.DuckDBPyConnection, ledger: Ledger, operator_id: str) -> None:
    """The ledger's state rows of the candidates, as the table ``old_state`` with the ledger's types."""
    ids = con.sql("select seller_id from candidates").to_arrow_table()
    schema = pa.schema([(c, pa.string()) for c in STATE_COLUMNS])
    with state_rows(ledger.engine, operator_id, ids) as reader, _stream(con, "reader_state", reader, schema):
        con.execute(
            f"create table old_state as select {_typed_columns()} from reader_state "
            "semi join candidates as c on c.seller_id = reader_state.seller_id"
        )


def _typed_columns() -> str:
    """The state's columns read as text, typed as the ledger types them."""
    out = []
    for column in t.due_diligence.c:
        name = column.name
        if isinstance(column.type, sa.Date):
            out.append(f"try_cast(nullif({name}, '') as date) as {name}")
        elif isinstance(column.type, sa.DateTime):
            out.append(f"try_cast(nullif({name}, '') as timestamp) as {name}")
        elif isinstance(column.type, sa.Integer):
            out.append(f"cast(nullif({name}, '') as integer) as {name}")
        elif name == "needs":
            out.append(name)
        else:
            out.append(f"nullif({name}, '') as {name}")
    return ", ".join(out)


def _scope(con: duckdb.DuckDBPyConnection, limit_rows: list[tuple[str, int]], rates: Any, variant: Any) -> None:
    """``scope``: each active seller's scope (``due_diligence_scope.sql``), the sellers paid in
    several currencies decided in Python by the rules' own test."""
    con.execute("create table limits (currency varchar, limit_minor bigint)")
    if limit_rows:
        con.executemany("insert into limits values (?, ?)", limit_rows)
    con.execute("create table fallback (seller_id varchar, under boolean)")
    params = {
        "goods": GOODS,
        "property": PROPERTY,
        "max_sales": DE_MINIMIS_MAX_SALES,
        "max_rentals": MAX_RENTALS_PER_LISTING,
    }
    con.execute(f"create table scope as {sql_text('due_diligence_scope.sql')}", params)
    pending = con.execute(sql_text("due_diligence_fallback.sql"), {"goods": GOODS}).fetchall()
    by_seller: dict[str, list[tuple[str, int]]] = {}
    sales: dict[str, int] = {}
    for seller_id, currency, amount, n in pending:
        by_seller.setdefault(seller_id, []).append((currency, int(amount)))
        sales[seller_id] = int(n)
    decided = [(s, under_limit(goods, sales[s], rates, variant)) for s, goods in by_seller.items()]
    if decided:
        con.executemany("insert into fallback values (?, ?)", decided)
        con.execute(
            "update scope set scope = 'excluded:de_minimis' from fallback as f "
            "where f.seller_id = scope.seller_id and f.under and scope.needs_fallback and scope.scope = $in_scope",
            {"in_scope": IN_SCOPE},
        )


def schedule(con: duckdb.DuckDBPyConnection, today: date, settings: CycleSettings) -> None:
    """From ``cycle_in`` (a seller per row: in scope or not, the items it lacks and the invalid
    ones among them, registered_at, and its cycle's columns as the ledger holds them, requested
    items as a list), the tables ``cycle`` (``due_diligence_cycle.sql``: the cycle advanced to
    ``today``) and ``actions`` (``due_diligence_actions.sql``: the actions due on ``today``)."""
    con.execute(f"create table cycle as {sql_text('due_diligence_cycle.sql')}", {"today": today})
    con.execute("create or replace view cycle_out as select * from cycle")
    con.execute(f"create table actions as {sql_text('due_diligence_actions.sql')}", schedule_params(today, settings))


def schedule_params(today: date, settings: CycleSettings) -> dict[str, Any]:
    """The parameters of ``due_diligence_actions.sql``."""
    return {
        "today": today,
        "reminder_1": REMINDER_1,
        "reminder_2": REMINDER_2,
        "measure": settings.measure,
        "reminder_1_days": settings.reminder_1_days,
        "reminder_2_days": settings.reminder_2_days,
        "measure_day": settings.measure_day,
        "reminder_1_latest": REMINDER_1_LATEST_DAY,
        "reminder_2_latest": REMINDER_2_LATEST_DAY,
        "last_day": LAST_MEASURE_DAY,
        "notice": PRE_REPORT_NOTICE,
        "request": REQUEST,
        "release": RELEASE,
        "since": settings.reporting_since,
        "second_year": settings.reporting_since.year + 1,
        "measures": list(MEASURES),
        "actions": list(DUE_DILIGENCE_ACTIONS),
    }


def _sources_sql() -> str:
    sources = ", ".join(
        f"coalesce(cast({i}_app as varchar), '') || ':' || coalesce({i}_new, '')" for i in DUE_DILIGENCE_ITEMS
    )
    return sql_text("due_diligence_sources.sql").replace("{item_sources}", sources)


def _items_sql() -> str:
    states, runs_out = [], []
    for i in DUE_DILIGENCE_ITEMS:
        expires = f"cast(o.{i}_checked + to_months($rely) as date) < $today"
        kept = (
            f"o.{i}_state in ('verified', 'invalid') and o.{i}_hash = x.{i}_new "
            f"and not (o.{i}_state = 'verified' and {expires})"
        )
        expired = f"x.in_source and x.{i}_app and o.{i}_state = 'verified' and o.{i}_hash = x.{i}_new and {expires}"
        states.append(
            f"case when not x.in_source then o.{i}_state when not x.{i}_app then 'not_applicable' "
            f"when x.{i}_new is null then 'missing' when {kept} then o.{i}_state else 'unverified' end as {i}_state"
        )
        states.append(f"case when not x.in_source then o.{i}_hash when x.{i}_app then x.{i}_new end as {i}_hash")
        states.append(
            f"case when not x.in_source then o.{i}_checked when x.{i}_app and {kept} then o.{i}_checked end "
            f"as {i}_checked"
        )
        states.append(f"coalesce({expired}, false) as {i}_expired")
        runs_out.append(f"case when {i}_state = 'verified' then cast({i}_checked + to_months($rely) as date) + 1 end")
    return (
        sql_text("due_diligence_items.sql")
        .replace("{item_states}", ",\n        ".join(states))
        .replace("{reverify_on}", f"least({', '.join(runs_out)})")
    )


def _cycle_in_sql() -> str:
    needs = ", ".join(
        f"case when i.{i}_state in ('{ITEM_MISSING}', '{ITEM_INVALID}') then '{i}' end" for i in DUE_DILIGENCE_ITEMS
    )
    invalid = ", ".join(f"case when i.{i}_state = '{ITEM_INVALID}' then '{i}' end" for i in DUE_DILIGENCE_ITEMS)
    return (
        f"select i.seller_id, i.scope = '{IN_SCOPE}' as in_scope, "
        f"list_filter([{needs}], lambda x: x is not null)::varchar[] as needs, "
        f"list_filter([{invalid}], lambda x: x is not null)::varchar[] as invalid, "
        "i.registered_at, o.notice_due, o.notice_on, o.request_due, o.requested_on, "
        "case when o.requested_items is null then []::varchar[] else string_split(o.requested_items, ',') end "
        "as requested_items, o.reminder_1_on, o.reminder_2_on, o.measure, o.measure_on, o.release_due, "
        "coalesce(o.cycles, 0) as cycles "
        "from items as i left join old_state as o on o.seller_id = i.seller_id"
    )


#: The columns of a state row a run decides (the others are its key and bookkeeping).
_COMPARED = tuple(c for c in STATE_COLUMNS if c not in ("operator_id", "seller_id", "first_seen", "updated", "changed"))


def _state_sql() -> str:
    items = ", ".join(f"i.{i}_state, i.{i}_hash, i.{i}_checked" for i in DUE_DILIGENCE_ITEMS) + ", i.reverify_on"
    compare = " or ".join(f"n.{c} is distinct from o.{c}" for c in _COMPARED)
    return sql_text("due_diligence_state.sql").replace("{item_columns}", items).replace("{compare}", compare)


def _events_sql() -> str:
    changes = ", ".join(
        f"case when n.{i}_state is distinct from o.{i}_state then "
        f"{{'item': '{i}', 'was': o.{i}_state, 'now': n.{i}_state}} end"
        for i in DUE_DILIGENCE_ITEMS
    )
    expired = ", ".join(f"case when i.{i}_expired then '{i}' end" for i in DUE_DILIGENCE_ITEMS)
    return sql_text("due_diligence_events.sql").replace("{item_changes}", changes).replace("{expired}", expired)


def _params(
    config: Config, today: date, now: datetime, zone: ZoneInfo, run_id: str, operator_id: str
) -> dict[str, Any]:
    return {
        "today": today,
        "now": _naive_utc(now),
        "at": local_midnight_utc(today, zone),
        "operator_id": operator_id,
        "period": today.year,
        "source": f"dac7 due-diligence run {today} ({run_id})"[:400],
        "property": PROPERTY,
        "not_active": NOT_ACTIVE,
        "rely": RELY_MONTHS,
    }


def text_schema(table: str) -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in TABLE_COLUMNS[table]])


def _pick(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: params[n] for n in names}


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> int:
    row = con.execute(sql, params or {}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _naive_utc(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
