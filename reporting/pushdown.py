"""The aggregation of the period's transactions, written once and run where the data is.

:data:`SOURCE_TOTALS_SQL` sums a seller's transactions per activity, listing, currency and
quarter, with the refunds applied as of the cut-off, in one query of plain SQL. It is written in
DuckDB's dialect and turned by sqlglot into the dialect of the engine that runs it: DuckDB over
the run's staged Parquet files (the embedded default, :mod:`reporting.stages.aggregate`), or the
source's own engine, PostgreSQL, MariaDB/MySQL, SQLite or Apache Spark, where only the
aggregates leave the database.

Why sqlglot rather than Ibis: the query is SQL already (the staged checks and the suites are SQL
too), sqlglot is one pure-Python package with no engine drivers, and the text it writes for each
engine can be read, logged and run by hand (``dac7 source-sql``). Ibis would bring an expression
API of its own and a backend package per engine for the same query.

What the query leaves to the caller, so that no engine needs a time-zone table, a regular
expression or an ASOF join:

- The period's bounds, the quarter starts and the end of the as-of day are UTC instants
  computed in Python (:class:`reporting.period.Period`) and written into the query as literals.
- The local date of a payment (needed only for the ECB rate of the payment day, ``fx_basis =
  "payment_date"``, and only for a currency other than the euro) is the UTC time plus the zone's
  offset, which changes at a few known instants of the year (:func:`utc_offsets`): a CASE over
  those instants, with a constant interval in each branch.
- The listing keys (listings at one address are one Property Listing) and the rate of each
  local date are joined in afterwards, over the aggregates, by :data:`FINISH_SQL`: grouping by
  the listing and the local date first and merging afterwards gives the same sums and counts.

Texts are compared exactly: on MariaDB/MySQL, whose usual collations compare text without regard
to case, accents or trailing spaces, every cleaned text (ids, activity, currency) is compared and
grouped as a binary string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pyarrow as pa
import sqlglot
from sqlglot import exp

from reporting.period import Period
from reporting.vocabulary import ACTIVITIES, DEFAULT_OPERATOR, OPERATOR_ID_PATTERN

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: the engines the aggregation runs on, by sqlglot's name of their dialect
DIALECTS = ("duckdb", "postgres", "mysql", "sqlite", "spark")

#: SQLAlchemy's dialect names (and "spark") → sqlglot's
ENGINE_DIALECTS: Mapping[str, str] = {
    "duckdb": "duckdb",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "spark": "spark",
}

#: the columns of the aggregates as every engine returns them (``local_date`` is null unless the
#: rate of the payment day is asked for and the currency is not the euro)
SOURCE_TOTALS_SCHEMA = pa.schema(
    [
        ("seller_id", pa.string()),
        ("activity", pa.string()),
        ("listing_id", pa.string()),
        ("currency", pa.string()),
        ("quarter", pa.int64()),
        ("local_date", pa.date32()),
        ("amount_minor", pa.int64()),
        ("fee_minor", pa.int64()),
        ("tax_minor", pa.int64()),
        ("activities", pa.int64()),
        ("rented_days", pa.int64()),
        ("transactions", pa.int64()),
        ("refunded_transactions", pa.int64()),
        ("fully_refunded_transactions", pa.int64()),
        ("gross_amount_minor", pa.int64()),
        ("refunded_amount_minor", pa.int64()),
        ("refunds_after_as_of", pa.int64()),
        ("refunded_after_as_of_minor", pa.int64()),
        ("refunds", pa.int64()),  # the refunds read, applied or late: for the extract's control count
    ]
)

# ``transactions_read`` and ``refunds_read`` are the period's transactions and every refund, as
# :func:`source_totals_sql` reads them from the engine's tables. ``fully_refunded`` keeps SQL's
# three values (null when an amount is missing): such a row counts neither as an activity nor as
# fully refunded, as in a COUNT ... FILTER over the boolean.
SOURCE_TOTALS_SQL = """
with applied_refunds as (
    select
        transaction_id,
        sum(amount_minor) as amount_minor,
        sum(coalesce(fee_minor, 0)) as fee_minor,
        sum(coalesce(tax_minor, 0)) as tax_minor,
        count(*) as refunds
    from refunds_read
    where refunded_at < {as_of_end}
    group by transaction_id
),

late_refunds as (
    -- refunds after the as-of date: not applied, but shown in the explanation
    select transaction_id, count(*) as refunds, sum(amount_minor) as amount_minor
    from refunds_read
    where refunded_at >= {as_of_end}
    group by transaction_id
),

net as (
    select
        t.seller_id,
        t.activity,
        t.listing_id,
        t.currency,
        case
            when t.paid_at >= {q4} then 4
            when t.paid_at >= {q3} then 3
            when t.paid_at >= {q2} then 2
            else 1
        end as quarter,
        {local_date} as local_date,
        t.amount_minor as gross_amount_minor,
        coalesce(r.amount_minor, 0) as refunded_amount_minor,
        t.amount_minor - coalesce(r.amount_minor, 0) as amount_minor,
        coalesce(t.fee_minor, 0) - coalesce(r.fee_minor, 0) as fee_minor,
        coalesce(t.tax_minor, 0) - coalesce(r.tax_minor, 0) as tax_minor,
        case when r.transaction_id is null then 0 else 1 end as refunded,
        case
            when r.transaction_id is null then 0
            when r.amount_minor >= t.amount_minor then 1
            when r.amount_minor < t.amount_minor then 0
        end as fully_refunded,
        coalesce(lr.refunds, 0) as late_refunds,
        coalesce(lr.amount_minor, 0) as late_refund_amount_minor,
        coalesce(r.refunds, 0) + coalesce(lr.refunds, 0) as refunds_counted,
        coalesce(t.rented_days, 0) as rented_days
    from transactions_read as t
    left join applied_refunds as r on r.transaction_id = t.transaction_id
    left join late_refunds as lr on lr.transaction_id = t.transaction_id
)

select
    seller_id,
    activity,
    listing_id,
    currency,
    quarter,
    local_date,
    cast(sum(amount_minor) as bigint) as amount_minor,
    cast(sum(fee_minor) as bigint) as fee_minor,
    cast(sum(tax_minor) as bigint) as tax_minor,
    cast(sum(case when fully_refunded = 0 then 1 else 0 end) as bigint) as activities,
    cast(sum(case when fully_refunded = 0 then rented_days end) as bigint) as rented_days,
    cast(count(*) as bigint) as transactions,
    cast(sum(refunded) as bigint) as refunded_transactions,
    cast(sum(case when fully_refunded = 1 then 1 else 0 end) as bigint) as fully_refunded_transactions,
    cast(sum(gross_amount_minor) as bigint) as gross_amount_minor,
    cast(sum(refunded_amount_minor) as bigint) as refunded_amount_minor,
    cast(sum(late_refunds) as bigint) as refunds_after_as_of,
    cast(sum(late_refund_amount_minor) as bigint) as refunded_after_as_of_minor,
    cast(sum(refunds_counted) as bigint) as refunds
from net
group by seller_id, activity, listing_id, currency, quarter, local_date
"""

# The source's columns as the extract reads them: text trimmed (an empty text is no value), codes
# in capitals. The staged files are read as they are: the extract has done this already.
_TRANSACTION_COLUMNS = ("transaction_id", "seller_id", "activity", "listing_id", "paid_at", "currency")
_AMOUNTS = ("amount_minor", "fee_minor", "tax_minor")

#: The aggregates merged per Property Listing, with the rate of each local date (the last one
#: published on or before it): the ``activity_totals`` of a run. DuckDB, over the staged
#: ``source_totals``, ``listing_keys`` and ``fx_rates``.
FINISH_SQL = """
select
    s.seller_id,
    s.activity,
    coalesce(k.listing_key, s.listing_id, '') as listing_id,
    s.currency,
    s.quarter::integer as quarter,
    f.rate_date,
    f.units_per_eur,
    sum(s.amount_minor)::bigint as amount_minor,
    sum(s.fee_minor)::bigint as fee_minor,
    sum(s.tax_minor)::bigint as tax_minor,
    sum(s.activities)::bigint as activities,
    sum(s.rented_days)::bigint as rented_days,
    sum(s.transactions)::bigint as transactions,
    sum(s.refunded_transactions)::bigint as refunded_transactions,
    sum(s.fully_refunded_transactions)::bigint as fully_refunded_transactions,
    sum(s.gross_amount_minor)::bigint as gross_amount_minor,
    sum(s.refunded_amount_minor)::bigint as refunded_amount_minor,
    sum(s.refunds_after_as_of)::bigint as refunds_after_as_of,
    sum(s.refunded_after_as_of_minor)::bigint as refunded_after_as_of_minor
from source_totals as s
asof left join fx_rates as f on f.currency = s.currency and s.local_date >= f.rate_date
left join listing_keys as k on k.listing_id = s.listing_id
group by all
order by seller_id, activity, listing_id, currency, quarter, rate_date
"""


@dataclass(frozen=True, slots=True)
class Bounds:
    """The UTC instants the query compares with, from a :class:`Period`."""

    start: datetime
    until: datetime
    quarters: tuple[datetime, datetime, datetime, datetime]
    as_of_end: datetime
    offsets: tuple[tuple[datetime, timedelta], ...]

    @classmethod
    def of(cls, period: Period) -> Bounds:
        return cls(
            start=period.start_utc,
            until=period.paid_until_utc,
            quarters=period.quarter_starts_utc,
            as_of_end=period.as_of_end_utc,
            offsets=utc_offsets(period),
        )


def utc_offsets(period: Period) -> tuple[tuple[datetime, timedelta], ...]:
    """The zone's offset from UTC over the period's payments: ``(from, offset)`` pairs, the first
    from the period's start, each in force from its UTC instant (naive) until the next one.
    Found by stepping through the period an hour at a time and bisecting each change to the
    second: a change of offset lies on a whole second in every zone of the tz database."""
    tz = period.tz

    def offset(at: datetime) -> timedelta:
        return at.replace(tzinfo=UTC).astimezone(tz).utcoffset() or timedelta(0)

    start, end = period.start_utc, period.paid_until_utc
    changes = [(start, offset(start))]
    hour = timedelta(hours=1)
    at = start
    while at < end:
        nxt = min(at + hour, end)
        if offset(nxt) != changes[-1][1]:
            low, high = at, nxt  # offset(low) is the current one, offset(high) the next
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                mid = mid.replace(microsecond=0)
                if offset(mid) == changes[-1][1]:
                    low = mid
                else:
                    high = mid
            changes.append((high, offset(high)))
        at = nxt
    return tuple(changes)


def _literal(at: datetime) -> str:
    return f"timestamp '{at:%Y-%m-%d %H:%M:%S}'"


def _local_date(bounds: Bounds, column: str) -> str:
    """SQL: the local date of the UTC time ``column``, one constant interval per offset."""

    def shifted(delta: timedelta) -> str:
        seconds = int(delta.total_seconds())
        return f"cast({column} + interval '{seconds}' second as date)"

    (*later,) = reversed(bounds.offsets[1:])
    if not later:
        return shifted(bounds.offsets[0][1])
    branches = " ".join(f"when {column} >= {_literal(at)} then {shifted(delta)}" for at, delta in later)
    return f"case {branches} else {shifted(bounds.offsets[0][1])} end"


#: What a row of the source may hold at either end of a text for Python (str.strip) and Arrow
#: (utf8_trim_whitespace) but SQL's TRIM does not remove: a row with one is read by the extract.
EXOTIC_WHITESPACE = (
    "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)
_TRANSACTION_TEXT = ("transaction_id", "seller_id", "activity", "listing_id", "currency")
_REFUND_TEXT = ("refund_id", "transaction_id")


@dataclass(frozen=True, slots=True)
class OperatorFilter:
    """The transactions of one operator of a group (``[operators.ID]``), by the optional column
    ``transactions.operator_id`` of the source contract: each operator runs a platform of its
    own, so its run reads, checks and sums its own transactions only, wherever that happens (the
    extract's queries, the source's aggregation, Spark's).

    A transaction without an operator id (NULL, or only spaces) or with ``default`` is the default
    operator's (``[operator]``); one with the id of an ``[operators.ID]`` is that operator's; any
    other id is no operator's (:meth:`unknown`: the run stops and names the rows). A source
    without the column holds the default operator's transactions only. An id is compared
    trimmed and exactly (case and accents count, also on MariaDB/MySQL). The ids are checked
    against :data:`reporting.vocabulary.OPERATOR_ID_PATTERN` here again: they are written into
    the SQL as literals, and nothing but letters, digits and ``_`` may be."""

    operator_id: str = DEFAULT_OPERATOR
    #: every operator of the configuration (the default operator's id among them)
    operator_ids: tuple[str, ...] = (DEFAULT_OPERATOR,)
    #: whether the source has ``transactions.operator_id``
    column: bool = False
    #: the operators of the group no transaction may be attributed to (:meth:`attributed_to`): the
    #: run's own operator where another operator of the group assumes its reporting, and those
    #: whose reporting it assumes (their transactions are the assuming operator's)
    assumed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        pattern = re.compile(OPERATOR_ID_PATTERN)
        bad = [i for i in (self.operator_id, *self.operator_ids) if not pattern.fullmatch(i)]
        if bad or self.operator_id not in self.operator_ids or DEFAULT_OPERATOR not in self.operator_ids:
            raise ValueError(f"not operator ids of a configuration: {self.operator_id!r} of {self.operator_ids!r}")

    @property
    def everything(self) -> bool:
        """Whether this operator's transactions are every transaction (a source without the column,
        read for the default operator): the queries are then those of a single operator."""
        return not self.column and self.operator_id == DEFAULT_OPERATOR

    def mine(self, value: str) -> str:
        """SQL: the transaction whose cleaned operator id is ``value`` (SQL that gives NULL for no
        id) is this operator's."""
        if not self.column:
            return "1 = 1" if self.operator_id == DEFAULT_OPERATOR else "1 = 0"
        if self.operator_id == DEFAULT_OPERATOR:
            return f"({value} is null or {value} = '{DEFAULT_OPERATOR}')"
        return f"{value} = '{self.operator_id}'"

    def attributed_to(self, value: str, operator_ids: tuple[str, ...]) -> str:
        """SQL: the transaction's cleaned operator id is one of ``operator_ids`` (ids of the
        configuration, checked here again: they are written into the SQL as literals)."""
        pattern = re.compile(OPERATOR_ID_PATTERN)
        if not self.column or not operator_ids or not all(pattern.fullmatch(i) for i in operator_ids):
            return "1 = 0"
        listed = ", ".join(f"'{i}'" for i in sorted(operator_ids) if i != DEFAULT_OPERATOR)
        default = f"{value} is null or {value} = '{DEFAULT_OPERATOR}'" if DEFAULT_OPERATOR in operator_ids else ""
        return "(" + " or ".join(p for p in (default, f"{value} in ({listed})" if listed else "") if p) + ")"

    def unknown(self, value: str) -> str:
        """SQL: the transaction's operator id names no operator of the configuration (exactly what
        no operator's :meth:`mine` takes)."""
        if not self.column:
            return "1 = 0"
        known = ", ".join(f"'{i}'" for i in sorted(self.operator_ids))
        return f"{value} is not null and {value} not in ({known})"

    @staticmethod
    def value(column: str, dialect: str) -> str:
        """SQL: the cleaned operator id of ``column`` in a query of ``sql/`` (run as it is written,
        not through sqlglot): trimmed, an empty text as NULL, as a binary string on MariaDB/MySQL."""
        text = f"nullif(trim({column}), '')"
        if dialect in ("mysql", "mariadb"):  # as :meth:`_Sql.text` compares it in the source's aggregation
            return f"cast(cast({text} as char character set utf8mb4) as binary)"
        return text


@dataclass(frozen=True, slots=True)
class Flags:
    """What makes the source hand a row to the extract instead of aggregating it: the rows the
    checks must see (:func:`flagged_transactions_sql`, :func:`flagged_refunds_sql`).

    ``payment_currencies`` are the ISO 4217 codes a payment may be in; ``rated_from`` gives, per
    currency with a rate, the first UTC instant of a payment that has one (the start of the
    period on the year-end basis, the local midnight of the first rate on the payment-date
    basis); ``max_total`` is the most a seller's amounts may add up to
    (:data:`reporting.checks.staged.MAX_SELLER_TOTAL`)."""

    payment_currencies: frozenset[str]
    rated_from: Mapping[str, datetime]
    max_total: int


#: the most keys :class:`FlagKeys` writes into a statement as literals; a source that flags more
#: (a hostile one) has each statement find its flagged keys itself, as joins
MAX_LISTED_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class FlagKeys:
    """The keys whose rows the checks must see, found once per run by :func:`flag_keys_sql` and
    written into the later statements as literals: the source then computes its flag sets once,
    not once in each of the three statements (the flagged transactions, their refunds, the sums).

    ``transactions``: transactions the checks must see whatever the row holds (a key that is not
    unique, a listing not the seller's, a refund flagged by itself, larger than its transaction or
    before it, refunds together larger); ``sellers``: sellers whose amounts or refunds add up
    beyond what is counted exactly; ``refunds``: refunds flagged by themselves (a missing value, a
    bad amount, a key that is not unique, no transaction of the period with their trimmed id).
    A NULL key matches no row in a join, so none is kept."""

    transactions: frozenset[str]
    sellers: frozenset[str]
    refunds: frozenset[str]

    @classmethod
    def of(cls, rows: Iterable[Sequence[object]]) -> FlagKeys:
        """From the ``(kind, k)`` rows of :func:`flag_keys_sql`."""
        kinds: dict[str, set[str]] = {"t": set(), "s": set(), "r": set()}
        for kind, key in rows:
            if key is not None:
                kinds[str(kind)].add(key.decode() if isinstance(key, (bytes, bytearray)) else str(key))
        return cls(frozenset(kinds["t"]), frozenset(kinds["s"]), frozenset(kinds["r"]))

    @property
    def size(self) -> int:
        """How many keys the literals hold."""
        return len(self.transactions) + len(self.sellers) + len(self.refunds)


_PG_ESCAPES = str.maketrans({c: f"\\x{ord(c):02x}" for c in "\\':%()"})
_KEY_LIST = re.compile(r"\((dac7_keys_[a-z])\)")


def _key_literal(value: str, dialect: str) -> str:
    """A key as a literal that means the same text whatever the session's settings, and holds no
    colon or percent sign (which SQLAlchemy's ``text()`` and the DB-API's ``format`` style read as
    parameters) and no parenthesis (nor, so, a list's placeholder): a hex string on MariaDB/MySQL
    (compared with the binary keys, which are UTF-8; no backslash escaping, which
    NO_BACKSLASH_ESCAPES turns off), an escape string on PostgreSQL."""
    if dialect == "mysql":
        return "X'" + value.encode().hex() + "'"
    if dialect == "postgres":
        return "E'" + value.translate(_PG_ESCAPES) + "'"
    raise ValueError(f"keys as literals in {dialect!r}: only for postgres and mysql")


def _with_keys(sql: str, dialect: str, lists: Mapping[str, Iterable[str]]) -> str:
    """``sql`` (written by sqlglot) with each ``(dac7_keys_x)`` replaced by its keys, after
    sqlglot: it would parse each of thousands of literals. A list without keys becomes the empty
    text, which no cleaned key is (an empty key is NULL). One pass over the statement: a key
    written in is never read again, whatever it holds."""
    found = set(_KEY_LIST.findall(sql))
    if found != set(lists):
        raise ValueError(f"the statement's key lists {sorted(found)} are not those given: {sorted(lists)}")
    written = {
        name: ", ".join(_key_literal(k, dialect) for k in sorted(keys)) or _key_literal("", dialect)
        for name, keys in lists.items()
    }
    return _KEY_LIST.sub(lambda m: f"({written[m.group(1)]})", sql)


class _Sql:
    """The pieces of SQL of one query: the extract's cleaning of a text, and an exact key; the
    period's transactions are those of ``operator`` (none: every transaction)."""

    def __init__(self, dialect: str, bounds: Bounds, operator: OperatorFilter | None = None) -> None:
        self.dialect = dialect
        self.bounds = bounds
        self.operator = operator if operator is not None and not operator.everything else None

    def text(self, column: str, *, code: bool = False) -> str:
        """A text as the extract cleans it, compared exactly: as a binary string on MariaDB/MySQL,
        whose usual collations take 'Sale_of_goods' for 'sale_of_goods' and an accented 'EUR'
        for 'EUR' (the capitals first: MySQL's UPPER leaves a binary string as it is)."""
        value = f"nullif(trim({column}), '')"
        if code:
            value = f"upper({value})"
        return f"dac7_binary({value})" if self.dialect == "mysql" else value

    def key(self, column: str) -> str:
        """A cleaned id, compared exactly."""
        return self.text(column)

    def period(self, alias: str) -> str:
        """The transaction ``alias`` is one of the period's (of the operator's, in a group)."""
        b = self.bounds
        text = f"{alias}.paid_at >= {_literal(b.start)} and {alias}.paid_at < {_literal(b.until)}"
        if self.operator is not None:
            text += f" and {self.operator.mine(self.key(f'{alias}.operator_id'))}"
        return text

    def matched(self, alias: str, transactions: str) -> str:
        """The refund is one of a transaction of the period, as the extract reads refunds
        (sql/extract_refunds.sql): the ids equal as written, byte for byte (on MariaDB/MySQL as
        binary strings too: :func:`reporting.source.same_transaction_id`)."""
        exact = ""
        if self.dialect == "mysql":
            exact = f"and dac7_binary(m.transaction_id) = dac7_binary({alias}.transaction_id) "
        return (
            f"exists (select 1 from {transactions} as m where m.transaction_id = {alias}.transaction_id "
            f"{exact}and {self.period('m')})"
        )


def _list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values))


def _big(column: str) -> str:
    return f"cast({column} as decimal(38, 0))"


def _row_flagged(sql: _Sql, flags: Flags) -> str:
    """SQL: the transaction ``t`` breaks a rule of the checks by itself."""
    x = sql.text
    rated = " ".join(f"when '{c}' then t.paid_at < {_literal(at)}" for c, at in sorted(flags.rated_from.items()))
    unrated = f"({x('t.currency', code=True)} <> 'EUR' and " + (
        f"case {x('t.currency', code=True)} {rated} else true end)" if rated else "true)"
    )
    return " or ".join(
        f"({c})"
        for c in (
            f"{x('t.transaction_id')} is null",
            f"{x('t.seller_id')} is null",
            f"{x('t.activity')} is null or {x('t.activity')} not in ({_list(ACTIVITIES)})",
            f"{x('t.currency', code=True)} is null "
            f"or {x('t.currency', code=True)} not in ({_list(flags.payment_currencies)})",
            unrated,
            "t.amount_minor is null or t.amount_minor < 0 or t.fee_minor < 0 or t.tax_minor < 0 or t.rented_days < 0",
            f"{x('t.activity')} = 'immovable_property' and {x('t.listing_id')} is null",
            f"{x('t.activity')} <> 'immovable_property' "
            f"and ({x('t.listing_id')} is not null or t.rented_days is not null)",
        )
    )


def _flag_ctes(sql: _Sql, flags: Flags, transactions: str, refunds: str, listings: str) -> str:
    """The CTEs of the flag sets, each computed once in a statement:

    - ``flag_matched``: the refunds of the period's transactions (by the source's comparison of
      ids, as the extract reads them), with their cleaned keys ``refund_key``, ``transaction_key``;
    - ``flag_refunded``: each of them with the period's transaction of its cleaned key (the
      transaction's amounts as ``paid_*``, its time, its cleaned seller ``seller_key``);
    - ``flag_refunds``: the refunds the checks must see by themselves: a missing value, a bad
      amount, a key that is not unique, or no transaction of the period with their cleaned id;
    - ``flag_transactions`` and ``flag_sellers`` (column ``k``, each key once): the keys whose
      rows go to the extract whatever the row itself holds.

    The key sets are joined to the rows (a hash join on every engine, whatever its estimates),
    never looked up from a condition under an OR: a subquery there runs once per row where the
    engine misjudges its size (PostgreSQL cannot estimate how many trimmed keys repeat). A key
    that is not unique is flagged, so the sums over ``flag_refunded`` (one row per refund and
    transaction of its key) need only be exact for a unique key."""
    k = sql.key
    period = sql.period
    paid = ", ".join(f"v.{a} as paid_{a}" for a in _AMOUNTS)
    refunded = (
        f"select r.refund_key, r.transaction_key, r.refunded_at, {', '.join(f'r.{a}' for a in _AMOUNTS)}, "
        f"{paid}, v.paid_at, {k('v.seller_id')} as seller_key from flag_matched as r "
        f"join {transactions} as v on {k('v.transaction_id')} = r.transaction_key and {period('v')}"
    )
    orphans = (
        "select distinct r.transaction_key as k from flag_matched as r left join "
        "(select distinct f.transaction_key as k from flag_refunded as f) as f on f.k = r.transaction_key "
        "where f.k is null"
    )
    duplicates = "select r.refund_key as k from flag_matched as r group by r.refund_key having count(*) > 1"
    flagged_refunds = (
        f"select r.* from flag_matched as r left join ({duplicates}) as dr on dr.k = r.refund_key "
        f"left join ({orphans}) as o on o.k = r.transaction_key "
        f"where {_refund_row_flagged()} or dr.k is not null or o.k is not null"
    )

    def over(alias: str) -> str:
        return " or ".join(f"sum({_big(f'coalesce({alias}.{a}, 0)')}) > {flags.max_total}" for a in _AMOUNTS)

    transaction_keys = [
        # keys that are not unique: every row of such a key
        f"select {k('d.transaction_id')} as k from {transactions} as d where {period('d')} "
        f"group by {k('d.transaction_id')} having count(*) > 1",
        # a listing that is not the seller's, among the listings the extract reads (those of the
        # sellers of the period's transactions, as written)
        f"select {k('b.transaction_id')} as k from {transactions} as b where {period('b')} "
        f"and {sql.text('b.listing_id')} is not null and not exists (select 1 from {listings} as p "
        f"where {k('p.listing_id')} = {k('b.listing_id')} and {k('p.seller_id')} = {k('b.seller_id')} "
        f"and p.seller_id in (select a.seller_id from {transactions} as a where {period('a')}))",
        # the transaction of a refund the checks must see by itself
        "select r.transaction_key as k from flag_refunds as r",
        # a refund larger than its transaction, or before its payment
        "select f.transaction_key as k from flag_refunded as f where f.amount_minor > f.paid_amount_minor "
        "or coalesce(f.fee_minor, 0) > coalesce(f.paid_fee_minor, 0) "
        "or coalesce(f.tax_minor, 0) > coalesce(f.paid_tax_minor, 0) or f.refunded_at < f.paid_at",
        # refunds that together exceed the transaction
        "select f.transaction_key as k from flag_refunded as f group by f.transaction_key having "
        + " or ".join(f"sum({_big(f'coalesce(f.{a}, 0)')}) > max(coalesce(f.paid_{a}, 0))" for a in _AMOUNTS),
    ]
    seller_keys = [
        # sellers whose amounts, or refunds, add up beyond what is counted exactly: every row
        f"select {k('o.seller_id')} as k from {transactions} as o where {period('o')} "
        f"group by {k('o.seller_id')} having {over('o')}",
        f"select f.seller_key as k from flag_refunded as f group by f.seller_key having {over('f')}",
    ]
    return (
        f"flag_matched as ({_matched_refunds(sql, transactions, refunds)}), "
        f"flag_refunded as ({refunded}), flag_refunds as ({flagged_refunds}), "
        f"flag_transactions as ({' union '.join(transaction_keys)}), "
        f"flag_sellers as ({' union '.join(seller_keys)})"
    )


def _matched_refunds(sql: _Sql, transactions: str, refunds: str) -> str:
    """The refunds of the period's transactions (by the source's comparison of ids, as the
    extract reads them), with their cleaned keys ``refund_key`` and ``transaction_key``."""
    k = sql.key
    return (
        f"select r.*, {k('r.refund_id')} as refund_key, {k('r.transaction_id')} as transaction_key "
        f"from {refunds} as r where {sql.matched('r', transactions)}"
    )


def _refund_row_flagged() -> str:
    """SQL: the refund ``r`` breaks a rule of the checks by itself (over its cleaned columns)."""
    return (
        "r.refund_key is null or r.transaction_key is null or r.refunded_at is null "
        "or r.amount_minor is null or r.amount_minor < 0 or r.fee_minor < 0 or r.tax_minor < 0"
    )


def _flag_joins(sql: _Sql, flags: Flags) -> tuple[str, str]:
    """``(joins, flagged)``: the joins to add after ``{transactions} as t`` in a statement with
    :func:`_flag_ctes`, and SQL that is 1 when the transaction ``t`` goes to the extract, else 0
    (never NULL: the two sides are exactly complementary)."""
    joins = (
        f" left join flag_transactions as flagged_t on flagged_t.k = {sql.key('t.transaction_id')}"
        f" left join flag_sellers as flagged_s on flagged_s.k = {sql.key('t.seller_id')}"
    )
    flagged = (
        f"case when {_row_flagged(sql, flags)} or flagged_t.k is not null or flagged_s.k is not null then 1 else 0 end"
    )
    return joins, flagged


def _keyed_flag(sql: _Sql, flags: Flags) -> str:
    """SQL that is 1 when the transaction ``t`` goes to the extract, else 0, with the flagged
    keys as lists (:class:`FlagKeys`, written in by :func:`_with_keys`)."""
    k = sql.key
    return (
        f"case when {_row_flagged(sql, flags)} or {k('t.transaction_id')} in (dac7_keys_t) "
        f"or {k('t.seller_id')} in (dac7_keys_s) then 1 else 0 end"
    )


def flag_keys_sql(
    period: Period,
    flags: Flags,
    *,
    dialect: str,
    transactions: str = "transactions",
    refunds: str = "refunds",
    listings: str = "property_listings",
    operator: OperatorFilter | None = None,
) -> str:
    """The keys of :class:`FlagKeys`, as ``(kind, k)`` rows: ``t`` a transaction, ``s`` a seller,
    ``r`` a refund. The source works out its flag sets here once; the statements that read the
    flagged rows and sum the others get the keys as literals."""
    sql = _Sql(dialect, Bounds.of(period), operator)
    return _finish(
        f"with {_flag_ctes(sql, flags, transactions, refunds, listings)} "
        "select 't' as kind, f.k from flag_transactions as f "
        "union all select 's' as kind, f.k from flag_sellers as f "
        "union all select distinct 'r' as kind, f.refund_key as k from flag_refunds as f",
        dialect,
    )


def _read_sql(
    dialect: str,
    staged: bool,
    transactions: str,
    refunds: str,
    bounds: Bounds,
    flags: Flags | None = None,
    listings: str = "property_listings",
    keyed: bool = False,
    operator: OperatorFilter | None = None,
) -> str:
    """The two read CTEs: the period's transactions and their refunds, with the extract's
    cleaning of the source's text (none for the staged files, already clean); with ``flags``,
    without the rows the extract reads for the checks (``keyed``: their keys as lists)."""
    if staged:
        # the staged transactions are the period's already, with those whose time the extract
        # could not read (quarantined, and counted in the reconciliation like every other row)
        cols = ", ".join((*_TRANSACTION_COLUMNS, *_AMOUNTS, "rented_days"))
        return (
            f"transactions_read as (select {cols} from {transactions}), "
            f"refunds_read as (select refund_id, transaction_id, refunded_at, {', '.join(_AMOUNTS)} from {refunds})"
        )
    sql = _Sql(dialect, bounds, operator)

    def text(column: str) -> str:
        value = sql.text(f"t.{column}", code=True) if column == "currency" else sql.key(f"t.{column}")
        return f"{value} as {column}"

    tx = ", ".join(
        [text(c) if c != "paid_at" else "t.paid_at" for c in _TRANSACTION_COLUMNS]
        + [f"t.{a}" for a in (*_AMOUNTS, "rented_days")]
    )
    where, joins, ctes = sql.period("t"), "", ""
    if flags is not None and keyed:
        where += f" and {_keyed_flag(sql, flags)} = 0"
    elif flags is not None:
        joins, flagged = _flag_joins(sql, flags)
        where += f" and {flagged} = 0"
        ctes = _flag_ctes(sql, flags, transactions, refunds, listings) + ", "
    ids = (f"{sql.key('t.refund_id')} as refund_id", f"{sql.key('t.transaction_id')} as transaction_id")
    rf = ", ".join((*ids, "t.refunded_at", *(f"t.{a}" for a in _AMOUNTS)))
    return (
        f"{ctes}transactions_read as (select {tx} from {transactions} as t{joins} where {where}), "
        f"refunds_read as (select {rf} from {refunds} as t where {sql.matched('t', transactions)})"
    )


def _finish(sql: str, dialect: str) -> str:
    tree = sqlglot.parse_one(sql, read="duckdb")
    if dialect in _REWRITES:
        tree = tree.transform(_REWRITES[dialect])
    return tree.sql(dialect=dialect, pretty=True)


def flagged_transactions_sql(
    period: Period,
    flags: Flags,
    *,
    dialect: str,
    transactions: str = "transactions",
    refunds: str = "refunds",
    listings: str = "property_listings",
    keys: FlagKeys | None = None,
    operator: OperatorFilter | None = None,
) -> str:
    """The period's transactions the checks must see, as the source holds them (the extract
    reads them as it reads every transaction in a run that aggregates at home); with ``keys``
    (:func:`flag_keys_sql`), one scan that compares with them."""
    sql = _Sql(dialect, Bounds.of(period), operator)
    cols = ", ".join(f"t.{c}" for c in (*_TRANSACTION_COLUMNS, *_AMOUNTS, "rented_days"))
    if keys is not None:
        where = f"{sql.period('t')} and {_keyed_flag(sql, flags)} = 1"
        text = _finish(f"select {cols} from {transactions} as t where {where}", dialect)
        return _with_keys(text, dialect, {"dac7_keys_t": keys.transactions, "dac7_keys_s": keys.sellers})
    joins, flagged = _flag_joins(sql, flags)
    return _finish(
        f"with {_flag_ctes(sql, flags, transactions, refunds, listings)} "
        f"select {cols} from {transactions} as t{joins} where {sql.period('t')} and {flagged} = 1",
        dialect,
    )


def flagged_refunds_sql(
    period: Period,
    flags: Flags,
    *,
    dialect: str,
    transactions: str = "transactions",
    refunds: str = "refunds",
    listings: str = "property_listings",
    keys: FlagKeys | None = None,
    flagged_transactions: Iterable[str | None] = (),
    operator: OperatorFilter | None = None,
) -> str:
    """The refunds the checks must see: those flagged by themselves, and every refund of a
    flagged transaction (the checks compare a transaction with all its refunds). With ``keys``,
    the keys of the flagged transactions are ``flagged_transactions``: the cleaned ids of the
    rows :func:`flagged_transactions_sql` gave (the extract cleans an id as the SQL does: a run
    whose texts hold other white space at their ends, which TRIM keeps, is read in full)."""
    sql = _Sql(dialect, Bounds.of(period), operator)
    cols = "r.refund_id, r.transaction_id, r.refunded_at, r.amount_minor, r.fee_minor, r.tax_minor"
    if keys is not None:
        text = _finish(
            f"select {cols} from ({_matched_refunds(sql, transactions, refunds)}) as r "
            "where r.transaction_key in (dac7_keys_f) or r.refund_key in (dac7_keys_r) "
            f"or {_refund_row_flagged()}",
            dialect,
        )
        ids = {i for i in flagged_transactions if i is not None}
        return _with_keys(text, dialect, {"dac7_keys_f": ids, "dac7_keys_r": keys.refunds})
    joins, flagged = _flag_joins(sql, flags)
    flagged_keys = (
        f"select distinct {sql.key('t.transaction_id')} as k from {transactions} as t{joins} "
        f"where {sql.period('t')} and {flagged} = 1"
    )
    by_itself = "select distinct r.refund_key as k from flag_refunds as r"
    return _finish(
        f"with {_flag_ctes(sql, flags, transactions, refunds, listings)} "
        f"select {cols} from flag_matched as r "
        f"left join ({flagged_keys}) as s on s.k = r.transaction_key "
        f"left join ({by_itself}) as b on b.k = r.refund_key "
        f"where s.k is not null or b.k is not null or {_refund_row_flagged()}",
        dialect,
    )


def exotic_whitespace_sql(
    period: Period,
    *,
    dialect: str,
    transactions: str = "transactions",
    refunds: str = "refunds",
    operator: OperatorFilter | None = None,
) -> str:
    """The number of the period's transactions and refunds with a text whose ends, after SQL's
    TRIM, hold white space other than the space: the extract trims it and SQL does not, so a
    run whose source has any reads every transaction (see :mod:`reporting.stages.extract`)."""
    sql = _Sql(dialect, Bounds.of(period), operator)
    chars = ", ".join("'" + c + "'" for c in EXOTIC_WHITESPACE)

    def odd(column: str) -> str:
        # in UTF-8 on MariaDB/MySQL: a latin1 column cannot be compared with these characters
        trimmed = f"trim(dac7_utf8({column}))" if dialect == "mysql" else f"trim({column})"
        return f"(substr({trimmed}, 1, 1) in ({chars}) or substr({trimmed}, length({trimmed}), 1) in ({chars}))"

    tx = " or ".join(odd(f"t.{c}") for c in _TRANSACTION_TEXT)
    rf = " or ".join(odd(f"r.{c}") for c in _REFUND_TEXT)
    return _finish(
        f"select (select count(*) from {transactions} as t where {sql.period('t')} and ({tx})) "
        f"+ (select count(*) from {refunds} as r where {sql.matched('r', transactions)} and ({rf})) as n",
        dialect,
    )


def source_totals_sql(
    period: Period,
    *,
    payment_date_rates: bool,
    dialect: str = "duckdb",
    staged: bool = False,
    transactions: str = "transactions",
    refunds: str = "refunds",
    flags: Flags | None = None,
    listings: str = "property_listings",
    keys: FlagKeys | None = None,
    operator: OperatorFilter | None = None,
) -> str:
    """The aggregation in ``dialect`` (one of :data:`DIALECTS`), reading the tables named
    ``transactions`` and ``refunds`` (a qualified name for a catalog, e.g. ``sales.transactions``).

    ``staged`` reads the run's staged files, already cleaned by the extract; otherwise the
    source's text is trimmed and its codes put in capitals as the extract does, and the refunds
    are those of the period's transactions by the source's comparison of ids, as the extract
    reads them. With ``flags``, the rows the checks must see are left out: the extract reads
    them (:func:`flagged_transactions_sql`) and they are aggregated with the staged SQL; with
    ``keys`` too, the flagged keys are compared with as lists. With ``operator``, the period's
    transactions are those of one operator of a group (in the source's tables; the staged files
    of a run hold its operator's already)."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    bounds = Bounds.of(period)
    q = bounds.quarters
    local_date = (
        f"case when t.currency <> 'EUR' then {_local_date(bounds, 't.paid_at')} end"
        if payment_date_rates
        else "cast(null as date)"
    )
    body = SOURCE_TOTALS_SQL.format(
        as_of_end=_literal(bounds.as_of_end),
        q2=_literal(q[1]),
        q3=_literal(q[2]),
        q4=_literal(q[3]),
        local_date=local_date,
    )
    keyed = flags is not None and keys is not None
    reads = _read_sql(dialect, staged, transactions, refunds, bounds, flags, listings, keyed, operator)
    text = _finish(body.replace("with applied_refunds as", f"with {reads}, applied_refunds as", 1), dialect)
    if keys is not None and keyed:
        return _with_keys(text, dialect, {"dac7_keys_t": keys.transactions, "dac7_keys_s": keys.sellers})
    return text


def _mysql(node: exp.Expression) -> exp.Expression:
    """MariaDB/MySQL: ``dac7_binary(x)`` is ``CAST(CAST(x AS CHAR CHARACTER SET utf8mb4) AS
    BINARY)``: the bytes of the text in UTF-8 whatever the column's character set (a latin1
    column's bytes would be neither the extract's text nor the keys' UTF-8 literals); sqlglot
    would write VARBINARY, which is no CAST target there."""
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("dac7_binary", "dac7_utf8"):
        utf8 = exp.DataType(this=exp.DataType.Type.CHARACTER_SET, kind=exp.Var(this="utf8mb4"))
        text = exp.Cast(this=node.expressions[0], to=utf8)
        if node.name.lower() == "dac7_utf8":
            return text
        return exp.Cast(this=text, to=exp.DataType(this=exp.DataType.Type.BINARY))
    return node


def _sqlite(node: exp.Expression) -> exp.Expression:
    """SQLite keeps a time as text 'YYYY-MM-DD HH:MM:SS' and has no interval: a bound is compared
    as that text, and a local date is ``date(paid_at, '+N seconds')``."""
    if (
        isinstance(node, exp.Cast)
        and node.to.is_type("timestamp", "timestampntz")
        and isinstance(node.this, exp.Literal)
        and node.this.is_string
    ):
        return node.this
    if (
        isinstance(node, exp.Cast)
        and node.to.is_type("date")
        and isinstance(node.this, exp.Add)
        and isinstance(node.this.expression, exp.Interval)
    ):
        seconds = int(node.this.expression.this.name)
        return exp.Anonymous(this="date", expressions=[node.this.this, exp.Literal.string(f"{seconds:+d} seconds")])
    return node


_REWRITES = {"mysql": _mysql, "sqlite": _sqlite}


def _value(value: object) -> object:
    """One spelling per value whatever the driver returns: MariaDB's binary ids come back as
    bytes, some drivers' sums as Decimal."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    if isinstance(value, Decimal):
        return int(value)
    return value


def _date(value: object) -> object:
    """A local date: SQLite gives it as text 'YYYY-MM-DD'."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def _batch(rows: Sequence[Sequence[object]]) -> pa.RecordBatch:
    local = SOURCE_TOTALS_SCHEMA.get_field_index("local_date")
    columns: list[list[object]] = [[] for _ in SOURCE_TOTALS_SCHEMA]
    for row in rows:
        for i, value in enumerate(row):
            columns[i].append(_date(value) if i == local else _value(value))
    return pa.RecordBatch.from_arrays(
        [pa.array(c, f.type) for c, f in zip(columns, SOURCE_TOTALS_SCHEMA, strict=True)],
        schema=SOURCE_TOTALS_SCHEMA,
    )


def _sorted(table: pa.Table) -> pa.Table:
    keys = ["seller_id", "activity", "listing_id", "currency", "quarter", "local_date"]
    return table.sort_by([(k, "ascending", "at_start") for k in keys])


def totals_table(rows: Iterable[Sequence[object]], batch_rows: int = 50_000) -> pa.Table:
    """The rows of :func:`source_totals_sql` from a DB-API or Spark cursor, as an Arrow table of
    :data:`SOURCE_TOTALS_SCHEMA`, in a fixed order (engines return groups in any order). The
    rows become Arrow batch by batch: Python holds one batch of values at a time."""
    batches, batch = [], []
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_rows:
            batches.append(_batch(batch))
            batch = []
    if batch or not batches:
        batches.append(_batch(batch))
    return _sorted(pa.Table.from_batches(batches, schema=SOURCE_TOTALS_SCHEMA))


def totals_from_arrow(table: pa.Table) -> pa.Table:
    """An engine's Arrow result (ADBC, Spark) as :data:`SOURCE_TOTALS_SCHEMA`, in the order of
    :func:`totals_table`."""
    table = table.rename_columns([n.lower() for n in table.column_names]).select(SOURCE_TOTALS_SCHEMA.names)
    return _sorted(table.cast(SOURCE_TOTALS_SCHEMA))


def read_source_totals(
    conn: Connection,
    period: Period,
    *,
    payment_date_rates: bool,
    flags: Flags | None = None,
    keys: FlagKeys | None = None,
    batch_rows: int = 50_000,
    operator: OperatorFilter | None = None,
) -> pa.Table:
    """The aggregates of the period, computed by the source's engine (a SQLAlchemy connection to
    PostgreSQL, MariaDB/MySQL or SQLite, its session in UTC as :func:`reporting.source.make_engine`
    sets it): only the aggregates travel."""
    dialect = ENGINE_DIALECTS.get(conn.dialect.name)
    if dialect is None:
        raise ValueError(f"no aggregation in the source for {conn.dialect.name}")
    sql = source_totals_sql(
        period, payment_date_rates=payment_date_rates, dialect=dialect, flags=flags, keys=keys, operator=operator
    )
    text = sql.replace("%", "%%") if conn.dialect.paramstyle in _PERCENT else sql
    result = conn.execution_options(stream_results=True, yield_per=batch_rows).exec_driver_sql(text)
    return totals_table((row for batch in result.partitions(batch_rows) for row in batch), batch_rows)


#: DB-API parameter styles in which a literal % must be doubled
_PERCENT = frozenset({"format", "pyformat"})
