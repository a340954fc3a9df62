"""The rules stage: every seller of the staged aggregates decided by :func:`reporting.rules.decide`,
and the decisions written to ``<run>/rules/`` (``decisions.parquet``, ``reported.parquet``,
``routing.parquet``).

A large marketplace is decided on every core: ranges of sellers decided by this process and
worker processes (:mod:`reporting.workers`), their rows written here in the sellers' order, the
same files as one pass writes (:func:`apply_rules`).

The stage decides and nothing else: the audit of what it decided (the record checks and the data
checks of the decided sellers, which may still quarantine some) is the next stage,
:mod:`reporting.stages.audit`, which takes the :class:`Decided` this stage returns.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from reporting import cyclic_gc
from reporting.errors import ConfigError, ReportingError
from reporting.explanation import explanation, money_text
from reporting.findings import Finding, Severity
from reporting.jurisdictions import Reportable, partner_jurisdictions, rule_set_for
from reporting.money import to_fraction
from reporting.quarantine import read_findings, read_quarantine, write_quarantine
from reporting.rules import (
    ActivityReport,
    Block,
    Decision,
    Rate,
    RuleContext,
    SellerFacts,
    decide,
    decimal_text,
    residence,
)
from reporting.settings import RunSettings
from reporting.staging import connect, seller_ranges
from reporting.variants import LegalVariant, reading_for
from reporting.vocabulary import QUARANTINED
from reporting.workers import MAX_WORKERS, run_ordered, workers_for

log = logging.getLogger(__name__)

#: The blocks of the sellers (the rows of the aggregates, each with its listing's country), in the
#: order of the seller's id, then of the block's keys: one sort, which DuckDB may spill, where a
#: list aggregate ordered per seller cost some 20 times as much and is built in memory.
BLOCKS_SQL = """
select
    a.seller_id, a.activity, a.listing_id, a.currency, a.quarter, a.amount_minor, a.fee_minor, a.tax_minor,
    a.activities, coalesce(a.rented_days, 0) as rented_days, p.address_country as listing_country,
    a.rate_date, a.units_per_eur
from activity_totals as a
left join property_listings as p on p.listing_id = a.listing_id
where {sellers} and a.seller_id in (select seller_id from sellers)
order by a.seller_id, a.activity, a.listing_id, a.currency, a.quarter, a.rate_date
"""

#: The sellers with activity, in the order of their id, each with how many rows of
#: :data:`BLOCKS_SQL` are its blocks.
FACTS_SQL = """
with blocks as (
    select a.seller_id, count(*) as blocks
    from activity_totals as a
    left join property_listings as p on p.listing_id = a.listing_id
    where {sellers}
    group by a.seller_id
),

tins as (
    select seller_id, list(distinct issued_by order by issued_by) as issuers
    from seller_tins as a where {sellers} group by seller_id
),

pes as (
    select seller_id, list(distinct country order by country) as countries
    from seller_permanent_establishments as a where {sellers} group by seller_id
),

final as (
    select
        s.seller_id, s.seller_type, s.residence_country, s.gvs_jurisdiction, s.is_governmental, s.is_listed,
        coalesce(t.issuers, []) as tin_issuers, coalesce(p.countries, []) as pe_countries, b.blocks
    from sellers as s
    inner join blocks as b on b.seller_id = s.seller_id
    left join tins as t on t.seller_id = s.seller_id
    left join pes as p on p.seller_id = s.seller_id
)

select * from final order by seller_id
"""

#: Sellers decided per reading of :data:`FACTS_SQL` and :data:`BLOCKS_SQL`: a large marketplace
#: is read in ranges of seller ids, one after the other, each at most about this many sellers, so
#: that no reading holds every seller at once (670,000 sellers at once exceeded a 1 GB DuckDB
#: budget when the blocks were read as lists).
FACTS_SELLERS_PER_READ = 150_000

RATES_SQL = """
select currency, rate_date, units_per_eur
from (
    select *, row_number() over (partition by currency order by rate_date desc) as rn
    from fx_rates where rate_date <= ?
) where rn = 1
"""

DECISION_SCHEMA = pa.schema(
    [
        ("seller_id", pa.string()),
        ("seller_type", pa.string()),
        ("decision", pa.string()),
        ("residence_countries", pa.list_(pa.string())),
        ("residence_reasons", pa.list_(pa.string())),
        ("authorities", pa.list_(pa.string())),
        ("currency", pa.string()),
        ("converted", pa.bool_()),
        ("rates", pa.string()),
        ("goods_activities", pa.int64()),
        ("goods_eur", pa.string()),
        ("goods_eur_exact", pa.string()),
        ("excluded_listings", pa.list_(pa.string())),
        ("explanation", pa.string()),
        # the reading of the rules that decided (the filing state's): "DE", "IE" ... or "EU"
        ("reading", pa.string()),
        ("reading_label", pa.string()),
        ("goods_part_excluded", pa.bool_()),
        # what the filing state forwards the seller to (Art. 8ac(2)), and why
        ("exchange_states", pa.list_(pa.string())),
        ("exchange_reasons", pa.list_(pa.string())),
    ]
)

Q = ("q1", "q2", "q3", "q4")
REPORT_SCHEMA = pa.schema(
    [
        ("seller_id", pa.string()),
        ("reading", pa.string()),  # "" for the EU wording, else the state whose reading decided
        ("activity", pa.string()),
        ("listing_id", pa.string()),
        ("currency", pa.string()),
        ("rented_days", pa.int64()),
    ]
    + [(f"cons_{q}", pa.int64()) for q in Q]
    + [(f"numb_{q}", pa.int64()) for q in Q]
    + [(f"fees_{q}", pa.int64()) for q in Q]
    + [(f"tax_{q}", pa.int64()) for q in Q]
    + [(f"exact_cons_{q}", pa.string()) for q in Q]
)


ROUTING_SCHEMA = pa.schema([("authority", pa.string()), ("seller_id", pa.string())])


AVERAGE_RATES_SQL = """
select currency, units_per_eur
from fx_rates
where rate_date between ? and ?
order by currency, rate_date
"""


def load_average_rates(con: Any, year: int) -> dict[str, Rate]:
    """The annual average of each currency's rates of the year, exact (a plain mean)."""
    by_currency: dict[str, list[Fraction]] = defaultdict(list)
    for currency, units in con.execute(AVERAGE_RATES_SQL, [date(year, 1, 1), date(year, 12, 31)]).fetchall():
        by_currency[currency].append(to_fraction(units))
    return {
        c: Rate(c, date(year, 12, 31), sum(v, Fraction(0)) / len(v), basis=f"annual average of {len(v)} rates")
        for c, v in by_currency.items()
    }


def load_rates(con: Any, year: int) -> dict[str, Rate]:
    rows = con.execute(RATES_SQL, [date(year, 12, 31)]).fetchall()
    return {c: Rate(c, d, to_fraction(u)) for c, d, u in rows}


def iter_facts(con: Any, batch_rows: int = 20_000, per_read: int | None = None) -> Iterator[SellerFacts]:
    """Every seller with activity, in the order of its id, read in ranges of ``per_read`` sellers
    (default :data:`FACTS_SELLERS_PER_READ`): the same sellers in the same order as one reading."""
    for low, high in seller_ranges(con, "activity_totals", per_read or FACTS_SELLERS_PER_READ):
        yield from range_facts(con, low, high, batch_rows)


def range_facts(con: Any, low: str | None, high: str | None, batch_rows: int = 20_000) -> Iterator[SellerFacts]:
    """The sellers with activity whose ids are in ``[low, high)`` (None: unbounded), in the order
    of their id."""
    params = {k: v for k, v in (("low", low), ("high", high)) if v is not None}
    where = {"low": "a.seller_id >= $low", "high": "a.seller_id < $high"}
    condition = " and ".join(where[k] for k in params) or "true"
    # the range's blocks read whole first (Arrow, a few dozen bytes a block): a connection
    # keeps one result open, and the sellers are read as a stream beside them
    table = con.sql(BLOCKS_SQL.replace("{sellers}", condition), params=params or None).to_arrow_table()
    blocks = _blocks(table, batch_rows)
    sellers = con.sql(FACTS_SQL.replace("{sellers}", condition), params=params or None)
    yield from _facts(sellers.to_arrow_reader(batch_rows), blocks)


#: the fields of :class:`Block` in the order of its constructor, as BLOCKS_SQL names them
_BLOCK_FIELDS = tuple(Block.__dataclass_fields__)


def _blocks(table: pa.Table, batch_rows: int) -> Iterator[tuple[str, Block]]:
    """The rows of :data:`BLOCKS_SQL` as (seller id, block), in its order, each Arrow batch turned
    into Python values a column at a time (no dict per row), the blocks built positionally."""
    for batch in table.to_batches(batch_rows):
        blocks = map(Block, *(batch.column(name).to_pylist() for name in _BLOCK_FIELDS))
        yield from zip(batch.column("seller_id").to_pylist(), blocks, strict=True)


def _facts(reader: Any, blocks: Iterator[tuple[str, Block]]) -> Iterator[SellerFacts]:
    """The sellers of each Arrow batch as records, each with its count of ``blocks`` taken from
    the stream of blocks in the same order (a seller whose id repeats gets the same blocks)."""
    previous: SellerFacts | None = None
    for batch in reader:
        columns = zip(
            batch.column("seller_id").to_pylist(),
            batch.column("seller_type").to_pylist(),
            batch.column("residence_country").to_pylist(),
            batch.column("gvs_jurisdiction").to_pylist(),
            batch.column("is_governmental").to_pylist(),
            batch.column("is_listed").to_pylist(),
            batch.column("tin_issuers").to_pylist(),
            batch.column("pe_countries").to_pylist(),
            batch.column("blocks").to_pylist(),
            strict=True,
        )
        for seller_id, seller_type, country, gvs, governmental, listed, tins, pes, count in columns:
            if previous is not None and previous.seller_id == seller_id:
                own = previous.blocks
            else:
                taken = list(itertools.islice(blocks, count))
                # sorted by seller: the first and the last of its count are its own, or none is
                if count < 1 or len(taken) != count or taken[0][0] != seller_id or taken[-1][0] != seller_id:
                    raise ReportingError(
                        f"activity_totals: the blocks read for seller {seller_id} are not its own "
                        "(the sellers and their blocks were read in different orders); run the rules stage again"
                    )
                own = tuple(b for _, b in taken)
            previous = SellerFacts(
                seller_id=seller_id,
                seller_type=seller_type,
                residence_country=country,
                gvs_jurisdiction=gvs,
                is_governmental=bool(governmental),
                is_listed=bool(listed),
                tin_issuers=tuple(tins),
                pe_countries=tuple(pes),
                blocks=own,
            )
            yield previous


@dataclass(slots=True)
class Decided:
    """What the rules stage hands to the audit, besides its files: the count of each decision and
    of the sellers routed to each authority, the findings that quarantined sellers (the rules'
    own, and the identity gaps of the sellers that crossed the thresholds), those sellers with the
    authorities they would have gone to, and the reading that decided. The audit updates them."""

    reading: LegalVariant
    #: the reportable jurisdictions of a Model Rules filing (None under DAC7)
    reportable: Reportable | None = None
    decisions: Counter[str] = field(default_factory=Counter)
    per_authority: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    incomplete_reportable: dict[str, list[str]] = field(default_factory=dict)


#: Below this many sellers the stage decides them all in this process: a worker costs about 0.6
#: CPU s to start (a fresh interpreter importing the stage) and 0.3 s more in its first job (what
#: the first decision of a process loads), and in a whole run the second core is shared with the
#: audit's data checks. On a quiet machine 29,969 sellers gained 0.15 s of the stage's 3.2 s for
#: 1.2 CPU s more, 99,891 sellers 1.8 s of 9.2 (docs/performance.md, "The sellers decided on
#: both cores").
PARALLEL_MIN_SELLERS = 50_000

#: Jobs per process when the stage decides in parallel: a few each, so that the processes finish
#: together whatever the worker's start costs, and no more: each job reads its range of the
#: staged files with two queries whose cost grows with the files (0.06 s a job at 30,000
#: sellers, 0.11 s at 100,000).
JOBS_PER_WORKER = 4

#: The fewest sellers of a job (a smaller marketplace has fewer jobs).
SELLERS_PER_JOB = 5_000

#: ``DAC7_RULES_WORKERS``: at most this many processes decide the sellers, this one included
#: (``1``: the stage's own process alone, whatever the number of sellers); unset, one per CPU
#: (at most :data:`reporting.workers.MAX_WORKERS`). The files are the same either way.
WORKERS_ENV = "DAC7_RULES_WORKERS"


def configured_workers() -> int | None:
    """The processes :data:`WORKERS_ENV` allows the stage (None when it is unset or empty); a
    value that is not a whole number of at least 1 is a :class:`ConfigError`."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        return None
    if not text.isdecimal() or int(text) < 1:  # isdigit() would let "²" through to int()'s ValueError
        raise ConfigError(
            f"{WORKERS_ENV}={text!r}: give a whole number of processes, at least 1 (1: the rules stage in its own "
            "process), or leave it unset (one per CPU)"
        )
    return int(text)


@dataclass(slots=True)
class _Tally:
    """What the deciding of sellers counts and collects besides the rows: the same for one range
    as for all, the ranges' tallies added up in their order giving the tally of one pass."""

    decisions: Counter[str] = field(default_factory=Counter)
    per_authority: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    incomplete_reportable: dict[str, list[str]] = field(default_factory=dict)
    notes: list[Finding] = field(default_factory=list)

    def add(self, other: _Tally) -> None:
        """``other``'s sellers (those after this tally's) added: the counters' keys in the order
        of their first seller, as one pass gives them."""
        self.decisions.update(other.decisions)
        self.per_authority.update(other.per_authority)
        self.findings += other.findings
        self.incomplete_reportable.update(other.incomplete_reportable)
        self.notes += other.notes


@dataclass(slots=True)
class _Part:
    """A job's result: the rows of its range of sellers for each file, in order, as Arrow tables
    (a few hundred bytes a seller, sent between processes as their buffers), and its tally."""

    decisions: pa.Table
    reports: pa.Table
    routes: pa.Table
    tally: _Tally


def apply_rules(settings: RunSettings, *, workers: int | None = None) -> Decided:
    """Decide every seller; write decisions, reported figures and routing to ``<run>/rules/``.

    A marketplace of at least :data:`PARALLEL_MIN_SELLERS` sellers is decided in ranges of
    sellers (:data:`JOBS_PER_WORKER` per process, at least :data:`SELLERS_PER_JOB` sellers each)
    by this process and worker processes (one per CPU, at most :data:`WORKERS_ENV` when it is set,
    or ``workers``; 1: this process alone), each range's rows written here in the order of the
    sellers, as one pass writes them: the same files, byte for byte."""
    out = settings.stage_dir("rules")
    con = connect(settings.run_path, "extract", "aggregate")
    tally = _Tally()
    try:
        ctx = filing_context(settings, con)
        if workers is None:
            allowed = configured_workers()
            processes = workers_for(MAX_WORKERS) if allowed is None else min(allowed, workers_for(MAX_WORKERS))
        else:
            processes = workers
        ranges = _job_ranges(con, processes)
        with (
            cyclic_gc.paused(),  # no cycle among the stage's objects (reporting.cyclic_gc)
            _Writer(out / "decisions.parquet", DECISION_SCHEMA) as dw,
            _Writer(out / "reported.parquet", REPORT_SCHEMA) as rw,
            _Writer(out / "routing.parquet", ROUTING_SCHEMA) as ow,
        ):
            if ranges is None:
                quarantined, incomplete = _quarantines(settings)
                _decide(iter_facts(con), ctx, quarantined, incomplete, tally, dw.add, rw.add, ow.add)
            else:
                with _CONNECTIONS_LOCK:  # the jobs done here read on cursors of this connection
                    _CONNECTIONS[settings.run_path] = con
                jobs = [(settings, ctx, low, high) for low, high in ranges]
                for part in run_ordered(_decide_range, jobs, workers=min(processes, len(jobs))):
                    dw.add_table(part.decisions)
                    rw.add_table(part.reports)
                    ow.add_table(part.routes)
                    tally.add(part.tally)
    finally:
        with _CONNECTIONS_LOCK:
            if _CONNECTIONS.get(settings.run_path) is con:
                del _CONNECTIONS[settings.run_path]
        con.close()
    notes, findings, incomplete_reportable = tally.notes, tally.findings, tally.incomplete_reportable
    write_quarantine(settings.stage_dir("checks") / GVS_NOTES, notes)
    if notes:
        log.info(
            "rules: %d seller(s) have a gvs_jurisdiction, which %s does not use; %s lists them",
            len(notes),
            ctx.rule_set.name,
            f"checks/{GVS_NOTES}",
        )
    if incomplete_reportable:
        identity = read_findings(settings.run_path / "extract" / "quarantine_identity.parquet")
        findings += [f for f in identity if f.seller_id in incomplete_reportable]
    return Decided(
        reading=ctx.variant,
        reportable=ctx.reportable,
        decisions=tally.decisions,
        per_authority=tally.per_authority,
        findings=findings,
        incomplete_reportable=incomplete_reportable,
    )


def _job_ranges(con: Any, workers: int) -> list[tuple[str | None, str | None]] | None:
    """The ranges of seller ids of the jobs that decide the sellers in parallel, or None when this
    process decides them alone (``workers`` 1, fewer than :data:`PARALLEL_MIN_SELLERS`
    sellers, or a single range)."""
    if workers <= 1:
        return None
    ((sellers,),) = con.execute("select count(distinct seller_id) from activity_totals").fetchall()
    if sellers < PARALLEL_MIN_SELLERS:
        return None
    per_job = max(SELLERS_PER_JOB, -(-sellers // (workers * JOBS_PER_WORKER)))
    ranges = seller_ranges(con, "activity_totals", min(per_job, FACTS_SELLERS_PER_READ))
    return ranges if len(ranges) > 1 else None


def _quarantines(settings: RunSettings) -> tuple[dict[str, str], dict[str, str]]:
    """The sellers set aside by the checks of the extract, and those with identity gaps (a name,
    a birth date ...), which matter for the sellers that are reported: each with its rule."""
    extract = settings.run_path / "extract"
    return read_quarantine(extract / "quarantine_extract.parquet"), read_quarantine(
        extract / "quarantine_identity.parquet"
    )


#: The connection of each run's staged files that the jobs of a process read from, each job on
#: a cursor of its own: the stage's own connection in its process, one made on the first job in a
#: worker (kept while the worker lives: a connection costs a few hundredths of a second, about
#: what a job's two readings cost).
_CONNECTIONS: dict[Path, Any] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _job_cursor(run_path: Path) -> Any:
    with _CONNECTIONS_LOCK:
        con = _CONNECTIONS.get(run_path)
        if con is None:
            con = _CONNECTIONS[run_path] = connect(run_path, "extract", "aggregate")
        return con.cursor()


def _decide_range(settings: RunSettings, ctx: RuleContext, low: str | None, high: str | None) -> _Part:
    """A job: the sellers of ``[low, high)`` decided, their rows and tally given back (in a worker
    process or in the stage's)."""
    quarantined, incomplete = _quarantines(settings)
    decisions, reports, routes = _Rows(DECISION_SCHEMA), _Rows(REPORT_SCHEMA), _Rows(ROUTING_SCHEMA)
    tally = _Tally()
    con = _job_cursor(settings.run_path)
    try:
        with cyclic_gc.paused():  # a worker's own collector (in the stage's process, already paused)
            facts = range_facts(con, low, high)
            _decide(facts, ctx, quarantined, incomplete, tally, decisions.add, reports.add, routes.add)
            return _Part(decisions.table(), reports.table(), routes.table(), tally)
    finally:
        con.close()


class _Rows:
    """A job's rows of one file, made into Arrow every ``batch_rows`` rows (a range of many
    sellers never holds them all as Python values)."""

    def __init__(self, schema: pa.Schema, batch_rows: int = 20_000) -> None:
        self.schema = schema
        self.batch_rows = batch_rows
        self.rows: list[tuple[Any, ...]] = []
        self.tables: list[pa.Table] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.batch_rows:
            self.tables.append(_table(self.rows, self.schema))
            self.rows = []

    def table(self) -> pa.Table:
        """Every row added, in order."""
        return pa.concat_tables([*self.tables, _table(self.rows, self.schema)])


def _decide(
    sellers: Iterable[SellerFacts],
    ctx: RuleContext,
    quarantined: dict[str, str],
    incomplete: dict[str, str],
    tally: _Tally,
    add_decision: Callable[[tuple[Any, ...]], object],
    add_report: Callable[[tuple[Any, ...]], object],
    add_route: Callable[[tuple[str, str]], object],
) -> None:
    """Decide ``sellers`` in order: each one's rows given to ``add_decision``, ``add_report`` and
    ``add_route`` (in the schemas' orders), what is counted and found added to ``tally``."""
    decisions_counter, per_authority = tally.decisions, tally.per_authority
    findings, incomplete_reportable, notes = tally.findings, tally.incomplete_reportable, tally.notes
    code, label, state = ctx.variant.code, ctx.variant.label, ctx.variant.state
    for facts in sellers:
        if facts.gvs_jurisdiction and not ctx.rule_set.residence_from_gvs:
            notes.append(gvs_not_used(facts.seller_id))
        # set aside by the checks of the extract, or by the rules (e.g. RentedDays out of range)
        rule = quarantined.get(facts.seller_id)
        if rule is None:
            d = decide(facts, ctx)
            if d.findings:
                findings.extend(d.findings)
                rule = min(f.rule for f in d.findings)
            elif d.authorities and facts.seller_id in incomplete:
                rule = incomplete[facts.seller_id]
                incomplete_reportable[facts.seller_id] = list(d.authorities)
        if rule is not None:
            d = Decision(
                facts.seller_id,
                f"{QUARANTINED}{rule}",
                residence(facts, ctx.rule_set),
                variant=ctx.variant.state,
            )
            decisions_counter[d.decision] += 1
            add_decision(_decision_row(facts, d, code, label))
            continue
        decisions_counter[d.decision] += 1
        add_decision(_decision_row(facts, d, code, label))
        for r in d.reports:
            add_report(_report_row(d.seller_id, r, state))
        for a in d.authorities:
            per_authority[a] += 1
            add_route((a, d.seller_id))


#: the info findings of the rules stage, under ``<run>/checks/`` (the quarantine files' layout)
GVS_NOTES = "rules_info.parquet"


def gvs_not_used(seller_id: str) -> Finding:
    """The info finding of a seller whose ``gvs_jurisdiction`` a DAC7 filing ignores: DAC7 has no
    government verification service residence (Annex V, Section II(D): the primary address, the
    TIN's and the permanent establishments' states; the project's legal notes, Q1), and the EU
    business rule 30030 (BR_RS_003, "[EU Specific] The GVS must not be provided") keeps it out of
    the message. Names the seller only, never the value."""
    return Finding(
        rule="dac7.gvs_not_used",
        table="sellers",
        key=seller_id,
        message="gvs_jurisdiction is set, but DAC7 does not use government verification service data (EU rule "
        "30030): the seller's residence is decided without it and nothing of it is filed",
        severity=Severity.INFO,
        seller_id=seller_id,
    )


def filing_context(settings: RunSettings, con: Any) -> RuleContext:
    """The rule context of a run: the filing state's reading of the rules for every seller, with
    the rates that reading takes for the EUR 2,000 test, and the filing jurisdiction's rule set
    with its reportable jurisdictions for the period (:mod:`reporting.jurisdictions`)."""
    rep = settings.config.reporting
    filing_state = settings.config.operator.country
    reading = reading_for(filing_state)
    rule_set = rule_set_for(filing_state)
    reportable = None
    if rule_set.model_rules:
        reportable = rule_set.reportable(
            settings.year, partner_jurisdictions(settings.config.authorities, filing_state)
        )
        if reportable.assumed:
            log.warning("rules: %s", reportable.assumed)
    return RuleContext(
        year=settings.year,
        routing=rep.routing,
        reporting_currency=rep.reporting_currency,
        operator_country=settings.config.operator.country,
        rates=load_rates(con, settings.year),
        variant=reading,
        threshold_rates=load_average_rates(con, settings.year) if reading.threshold_rate == "annual_average" else None,
        rule_set=rule_set,
        reportable=reportable,
    )


def _decision_row(facts: SellerFacts, d: Decision, code: str, label: str) -> tuple[Any, ...]:
    """A row of ``decisions.parquet``, its values in :data:`DECISION_SCHEMA`'s order; ``code`` and
    ``label`` are the reading's (the same for every seller of a run: worked out once)."""
    goods_eur = d.goods_eur
    return (
        d.seller_id,
        facts.seller_type,
        d.decision,
        [c for c, _ in d.residence],
        [r for _, r in d.residence],
        list(d.authorities),
        d.currency,
        d.converted,
        _rates_json(d.rates, d.payment_rates),
        d.goods_activities,
        None if goods_eur is None else money_text(goods_eur, "").strip().replace(",", ""),
        None if goods_eur is None else str(goods_eur),
        list(d.excluded_listings),
        explanation(d),
        code,
        label,
        d.goods_part_excluded,
        [c for c, _ in d.exchange],
        [r for _, r in d.exchange],
    )


@functools.lru_cache(maxsize=4096)
def _rates_json(rates: tuple[Rate, ...], payment_rates: tuple[tuple[str, int, date, date], ...]) -> str:
    """The ``rates`` column of a decision: the same few rates recur for thousands of sellers, so
    each combination is written once (a pure function of its arguments, all immutable)."""
    return json.dumps(
        [
            {
                "currency": r.currency,
                "rate_date": r.rate_date.isoformat(),
                "units_per_eur": decimal_text(r.units_per_eur),
            }
            for r in rates
        ]
        + [
            {"currency": c, "basis": "payment_date", "rates": n, "first": a.isoformat(), "last": b.isoformat()}
            for c, n, a, b in payment_rates
        ]
    )


def _report_row(seller_id: str, r: ActivityReport, reading: str) -> tuple[Any, ...]:
    """A row of ``reported.parquet``, its values in :data:`REPORT_SCHEMA`'s order."""
    return (
        seller_id,
        reading,
        r.activity,
        r.listing_id,
        r.currency,
        r.rented_days,
        *r.consideration,
        *r.activities,
        *r.fees,
        *r.taxes,
        *map(str, r.exact_consideration),
    )


def _table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    """Rows (tuples in the schema's order) as a table, each column built from its values at once."""
    if not rows:
        return schema.empty_table()
    columns = zip(*rows, strict=True)
    return pa.Table.from_arrays(
        [pa.array(values, f.type) for values, f in zip(columns, schema, strict=True)], schema=schema
    )


class _Writer:
    """Buffered Parquet writer: rows in (tuples in the schema's order), or tables of such rows,
    row groups of ``batch_rows`` rows out (the last one the rest), whichever way the rows came
    in; atomic rename on close."""

    def __init__(self, path: Any, schema: pa.Schema, batch_rows: int = 20_000) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.schema = schema
        self.batch_rows = batch_rows
        self.rows: list[tuple[Any, ...]] = []
        self.tables: list[pa.Table] = []
        self.table_rows = 0
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")

    def add(self, row: tuple[Any, ...]) -> None:
        if self.tables:  # after tables (not done by the stage): the row joins them
            self.add_table(_table([row], self.schema))
            return
        self.rows.append(row)
        if len(self.rows) >= self.batch_rows:
            self.flush()

    def add_table(self, table: pa.Table) -> None:
        """The rows of ``table`` (of this writer's schema) after those added before."""
        if self.rows:
            self.tables.append(_table(self.rows, self.schema))
            self.table_rows += len(self.rows)
            self.rows = []
        self.tables.append(table)
        self.table_rows += table.num_rows
        self._write_tables(rest=False)

    def _write_tables(self, *, rest: bool) -> None:
        """Row groups of ``batch_rows`` rows from the tables added, and the rest too if ``rest``."""
        while self.table_rows >= self.batch_rows or (rest and self.table_rows):
            rows = pa.concat_tables(self.tables)
            group = min(self.batch_rows, rows.num_rows)
            self.writer.write_table(rows.slice(0, group).combine_chunks())
            left = rows.slice(group)
            self.tables, self.table_rows = ([left] if left.num_rows else []), left.num_rows

    def flush(self) -> None:
        if self.tables:
            self._write_tables(rest=True)
        elif self.rows:
            self.writer.write_table(_table(self.rows, self.schema))
            self.rows = []

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.flush()
        self.writer.close()
        if exc_type is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)
