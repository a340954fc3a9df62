"""The rules stage: every seller of the staged aggregates decided by :func:`reporting.rules.decide`,
and the decisions written to ``<run>/rules/`` (``decisions.parquet``, ``reported.parquet``,
``routing.parquet``).

The stage decides and nothing else: the audit of what it decided (the record checks and the data
checks of the decided sellers, which may still quarantine some) is the next stage,
:mod:`reporting.stages.audit`, which takes the :class:`Decided` this stage returns.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

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
from reporting.variants import EU_READING, LegalVariant, reading_for
from reporting.vocabulary import QUARANTINED

log = logging.getLogger(__name__)

FACTS_SQL = """
with blocks as (
    select
        a.seller_id,
        list(struct_pack(
            activity := a.activity, listing_id := a.listing_id, currency := a.currency,
            quarter := a.quarter, amount_minor := a.amount_minor, fee_minor := a.fee_minor,
            tax_minor := a.tax_minor, activities := a.activities,
            rented_days := coalesce(a.rented_days, 0), listing_country := p.address_country,
            rate_date := a.rate_date, units_per_eur := a.units_per_eur
        ) order by a.activity, a.listing_id, a.currency, a.quarter, a.rate_date) as blocks
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

#: Sellers decided per reading of :data:`FACTS_SQL`: its lists of blocks are built in memory
#: (DuckDB cannot spill a list aggregate), so a large marketplace is read in ranges of seller ids,
#: one after the other, each at most about this many sellers (670,000 sellers at once exceeded
#: a 1 GB DuckDB budget).
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
        params = {k: v for k, v in (("low", low), ("high", high)) if v is not None}
        where = {"low": "a.seller_id >= $low", "high": "a.seller_id < $high"}
        sql = FACTS_SQL.replace("{sellers}", " and ".join(where[k] for k in params) or "true")
        yield from _facts(con.sql(sql, params=params or None).to_arrow_reader(batch_rows))


def _facts(reader: Any) -> Iterator[SellerFacts]:
    for batch in reader:
        for r in batch.to_pylist():
            yield SellerFacts(
                seller_id=r["seller_id"],
                seller_type=r["seller_type"],
                residence_country=r["residence_country"],
                gvs_jurisdiction=r["gvs_jurisdiction"],
                is_governmental=bool(r["is_governmental"]),
                is_listed=bool(r["is_listed"]),
                tin_issuers=tuple(r["tin_issuers"]),
                pe_countries=tuple(r["pe_countries"]),
                blocks=tuple(Block(**b) for b in r["blocks"]),
            )


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


def apply_rules(settings: RunSettings) -> Decided:
    """Decide every seller; write decisions, reported figures and routing to ``<run>/rules/``."""
    out = settings.stage_dir("rules")
    con = connect(settings.run_path, "extract", "aggregate")
    decisions_counter: Counter[str] = Counter()
    per_authority: Counter[str] = Counter()
    findings: list[Finding] = []
    incomplete_reportable: dict[str, list[str]] = {}
    notes: list[Finding] = []
    try:
        ctx = filing_context(settings, con)
        with (
            _Writer(out / "decisions.parquet", DECISION_SCHEMA) as dw,
            _Writer(out / "reported.parquet", REPORT_SCHEMA) as rw,
            _Writer(out / "routing.parquet", pa.schema([("authority", pa.string()), ("seller_id", pa.string())])) as ow,
        ):
            quarantined = read_quarantine(settings.run_path / "extract" / "quarantine_extract.parquet")
            # identity gaps (a name, a birth date ...) matter for the sellers that are reported
            incomplete = read_quarantine(settings.run_path / "extract" / "quarantine_identity.parquet")
            for facts in iter_facts(con):
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
                    dw.add(_decision_row(facts, d, ctx.variant))
                    continue
                decisions_counter[d.decision] += 1
                dw.add(_decision_row(facts, d, ctx.variant))
                for r in d.reports:
                    rw.add(_report_row(d.seller_id, r, ctx.variant.state))
                for a in d.authorities:
                    per_authority[a] += 1
                    ow.add({"authority": a, "seller_id": d.seller_id})
    finally:
        con.close()
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
        decisions=decisions_counter,
        per_authority=per_authority,
        findings=findings,
        incomplete_reportable=incomplete_reportable,
    )


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


def _decision_row(facts: SellerFacts, d: Decision, reading: LegalVariant = EU_READING) -> dict[str, Any]:
    return {
        "seller_id": d.seller_id,
        "seller_type": facts.seller_type,
        "decision": d.decision,
        "residence_countries": [c for c, _ in d.residence],
        "residence_reasons": [r for _, r in d.residence],
        "authorities": list(d.authorities),
        "currency": d.currency,
        "converted": d.converted,
        "rates": _rates_json(d.rates, d.payment_rates),
        "goods_activities": d.goods_activities,
        "goods_eur": None if d.goods_eur is None else money_text(d.goods_eur, "").strip().replace(",", ""),
        "goods_eur_exact": None if d.goods_eur is None else str(d.goods_eur),
        "excluded_listings": list(d.excluded_listings),
        "explanation": explanation(d),
        "reading": reading.code,
        "reading_label": reading.label,
        "goods_part_excluded": d.goods_part_excluded,
        "exchange_states": [c for c, _ in d.exchange],
        "exchange_reasons": [r for _, r in d.exchange],
    }


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


def _report_row(seller_id: str, r: ActivityReport, reading: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "seller_id": seller_id,
        "reading": reading,
        "activity": r.activity,
        "listing_id": r.listing_id,
        "currency": r.currency,
        "rented_days": r.rented_days,
    }
    for i, q in enumerate(Q):
        row[f"cons_{q}"] = r.consideration[i]
        row[f"numb_{q}"] = r.activities[i]
        row[f"fees_{q}"] = r.fees[i]
        row[f"tax_{q}"] = r.taxes[i]
        row[f"exact_cons_{q}"] = str(r.exact_consideration[i])
    return row


class _Writer:
    """Buffered Parquet writer: rows in, batches out, atomic rename on close."""

    def __init__(self, path: Any, schema: pa.Schema, batch_rows: int = 20_000) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.schema = schema
        self.batch_rows = batch_rows
        self.rows: list[dict[str, Any]] = []
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
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
