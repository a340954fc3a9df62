"""The DAC7 rules: who is reported, to whom, and with which figures.

Pure functions over frozen records (:class:`SellerFacts` in, :class:`Decision` out), so that
every rule is testable by hand-computed cases. :func:`apply_rules` is the stage that feeds them
from the staged aggregates and writes the decisions.

One reading decides every seller of a run: the reading of the member state the operator files in
(:func:`reporting.variants.reading_for`), wherever the seller lives. A filing (routing ``nexus``)
goes to that state alone; each decision also records the states it forwards the seller to
(``exchange``: residence, property). A preview (routing ``jurisdiction``) routes each seller to
those states instead, under the same reading.

Decision reason codes are stable: ``reported``, ``excluded:governmental``, ``excluded:listed``,
``excluded:de_minimis``, ``excluded_listing:over_2000_rentals``, ``not_reportable:non_eu``,
``not_reportable:no_activity``.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reporting.countries import EU_MEMBER_STATES, minor_unit_exponent
from reporting.findings import Finding
from reporting.money import minor_to_units, round_half_up, round_half_up_ratio, to_fraction
from reporting.quarantine import (
    enforce_quarantine_policy,
    quarantine_findings,
    read_findings,
    read_quarantine,
    write_quarantine,
)
from reporting.settings import RunSettings, write_json
from reporting.staging import connect
from reporting.variants import EU_READING, LegalVariant, reading_for, variant_of

if TYPE_CHECKING:
    from reporting.checks.data import ChecksWorker

log = logging.getLogger(__name__)

GOODS = "sale_of_goods"
PROPERTY = "immovable_property"
ACTIVITY_ORDER = (PROPERTY, "personal_services", GOODS, "transportation_rental")

DE_MINIMIS_MAX_SALES = 29  # "fewer than 30" sales of goods ...
DE_MINIMIS_MAX_EUR = Fraction(2000)  # ... AND consideration that "did not exceed" EUR 2,000
MAX_RENTALS_PER_LISTING = 2000  # an entity's listing with MORE than 2,000 rentals is excluded
MAX_RENTED_DAYS = 9999  # the schema's limit for RentedDays

REPORTED = "reported"
EXCLUDED_GOVERNMENTAL = "excluded:governmental"
EXCLUDED_LISTED = "excluded:listed"
EXCLUDED_DE_MINIMIS = "excluded:de_minimis"
EXCLUDED_LISTING = "excluded_listing:over_2000_rentals"
NOT_REPORTABLE_NON_EU = "not_reportable:non_eu"
NOT_REPORTABLE_NO_ACTIVITY = "not_reportable:no_activity"
QUARANTINED = "quarantined:"  # + the first rule (by name) that set the seller aside
#: Every fixed decision code (a quarantine's code is ``QUARANTINED`` + its rule).
DECISION_CODES: tuple[str, ...] = (
    REPORTED,
    EXCLUDED_GOVERNMENTAL,
    EXCLUDED_LISTED,
    EXCLUDED_DE_MINIMIS,
    EXCLUDED_LISTING,
    NOT_REPORTABLE_NON_EU,
    NOT_REPORTABLE_NO_ACTIVITY,
)


@dataclass(frozen=True, slots=True)
class Block:
    """One aggregate row: a seller's activity (and listing), currency and quarter, after refunds."""

    activity: str
    listing_id: str
    currency: str
    quarter: int
    amount_minor: int
    fee_minor: int
    tax_minor: int
    activities: int
    rented_days: int = 0
    listing_country: str | None = None
    rate_date: date | None = None  # payment-date basis: the rate of these payments' day ...
    units_per_eur: str | None = None  # ... and its value; None: the year-end rate applies


@dataclass(frozen=True, slots=True)
class SellerFacts:
    seller_id: str
    seller_type: str
    residence_country: str | None
    is_governmental: bool = False
    is_listed: bool = False
    tin_issuers: tuple[str, ...] = ()
    pe_countries: tuple[str, ...] = ()
    blocks: tuple[Block, ...] = ()


@dataclass(frozen=True, slots=True)
class Rate:
    currency: str
    rate_date: date
    units_per_eur: Fraction
    basis: str = ""  # e.g. "annual average of 250 rates"; "" for the rate of rate_date

    @property
    def text(self) -> str:
        if self.basis:
            shown = Decimal(round_half_up(self.units_per_eur * 10**6)).scaleb(-6)
            return f"{self.currency} {shown} per EUR ({self.basis} up to {self.rate_date})"
        return f"{self.currency} {decimal_text(self.units_per_eur)} per EUR on {self.rate_date}"


def decimal_text(value: Fraction) -> str:
    """Decimal text of an exact rate (rates are terminating decimals by contract)."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 50
        return format((Decimal(value.numerator) / Decimal(value.denominator)).normalize(), "f")


@dataclass(frozen=True, slots=True)
class ActivityReport:
    """The figures of one reported activity (or Property Listing), whole units per quarter."""

    activity: str
    listing_id: str
    currency: str
    consideration: tuple[int, int, int, int]
    activities: tuple[int, int, int, int]
    fees: tuple[int, int, int, int]
    taxes: tuple[int, int, int, int]
    rented_days: int
    exact_consideration: tuple[Fraction, Fraction, Fraction, Fraction]


@dataclass(frozen=True, slots=True)
class Decision:
    seller_id: str
    decision: str
    residence: tuple[tuple[str, str], ...] = ()
    authorities: tuple[str, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()  # (authority, why it receives the seller)
    #: the member states that receive the seller from the filing state through the exchange
    #: between authorities (Art. 8ac(2)), and why: residence, or property located there
    exchange: tuple[tuple[str, str], ...] = ()
    currency: str | None = None
    converted: bool = False
    rates: tuple[Rate, ...] = ()
    payment_rates: tuple[tuple[str, int, date, date], ...] = ()
    goods_activities: int = 0
    goods_eur: Fraction | None = None
    excluded_listings: tuple[str, ...] = ()
    not_reported_non_eu: tuple[str, ...] = ()  # activities of a non-EU seller outside EU property
    variant: str = ""  # the member state whose reading decided, "" for the EU wording
    goods_part_excluded: bool = False  # a national reading exempted the goods part only
    reports: tuple[ActivityReport, ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    @property
    def reportable(self) -> bool:
        return self.decision == REPORTED


@dataclass(frozen=True, slots=True)
class RuleContext:
    year: int
    routing: str  # "nexus" (the filing) | "jurisdiction" (a preview of what each state receives)
    reporting_currency: str  # "original" | "EUR"
    operator_country: str  # the filing state: the member state the operator files in
    rates: dict[str, Rate]  # the year-end rate per currency
    #: the reading of the rules: the filing state's (:func:`reporting.variants.reading_for`),
    #: applied to every seller of the run, wherever the seller lives
    variant: LegalVariant = EU_READING
    threshold_rates: dict[str, Rate] | None = None  # rates for the EUR 2,000 test, if not ``rates``


def residence(facts: SellerFacts) -> tuple[tuple[str, str], ...]:
    """DAC7 residence: the primary address state, each EU state that issued a TIN, and for an
    entity each EU state of a permanent establishment. Returns (country, reason) pairs."""
    out: dict[str, str] = {}
    if facts.residence_country:
        out[facts.residence_country] = "primary address"
    for issuer in facts.tin_issuers:
        if issuer in EU_MEMBER_STATES and issuer not in out:
            out[issuer] = f"TIN issued by {issuer}"
    if facts.seller_type == "entity":
        for pe in facts.pe_countries:
            if pe in EU_MEMBER_STATES and pe not in out:
                out[pe] = f"permanent establishment in {pe}"
    return tuple(out.items())


def _groups(blocks: Iterable[Block]) -> dict[tuple[str, str], list[Block]]:
    groups: dict[tuple[str, str], list[Block]] = defaultdict(list)
    for b in blocks:
        groups[(b.activity, b.listing_id)].append(b)
    # An activity whose consideration and count are both zero after refunds is not reported.
    return {k: v for k, v in groups.items() if sum(b.amount_minor for b in v) != 0 or sum(b.activities for b in v) != 0}


def exact_sum(blocks: Iterable[Block], attr: str, rates: dict[str, Rate], convert: bool = True) -> Fraction:
    """Exact total of an amount column, in EUR when ``convert`` (each block at its own payment-
    date rate when it has one, else at the year-end rate), else in the blocks' one currency."""
    per_rate: dict[tuple[str, str | None], int] = {}
    for b in blocks:
        k = (b.currency, b.units_per_eur)
        per_rate[k] = per_rate.get(k, 0) + getattr(b, attr)
    numerator, denominator = _exact_ratio(per_rate, rates, convert)
    return Fraction(numerator, denominator)


@functools.cache
def _minor_divisor(currency: str) -> int:
    """Minor units per whole unit of a currency (EUR: 100), looked up once per currency; raises
    ValueError for a code that is not a payment currency, as :func:`minor_to_units` does."""
    return 10 ** minor_unit_exponent(currency)


def _exact_ratio(per_rate: dict[tuple[str, str | None], int], rates: dict[str, Rate], convert: bool) -> tuple[int, int]:
    """The exact total of minor-unit sums per (currency, payment-date rate) as a ratio of
    integers (denominator > 0, not necessarily in lowest terms), in EUR when ``convert``.

    Most totals are of one currency that is not converted (or is EUR): then the total is the
    integer sum over the currency's minor-unit divisor, and no Fraction is built at all (the
    rules compute some 200,000 of them per 30,000 sellers). Otherwise each sum is converted as
    an exact Fraction at its rate, exactly as :func:`reporting.money.to_eur` would."""
    if not per_rate:
        return 0, 1
    currencies = {c for c, _ in per_rate}
    if len(currencies) == 1:
        (currency,) = currencies
        if not convert or currency == "EUR":
            return sum(per_rate.values()), _minor_divisor(currency)
    total = Fraction(0)
    for (currency, units_per_eur), minor in per_rate.items():
        units = minor_to_units(minor, currency)
        if convert and currency != "EUR":
            units /= to_fraction(units_per_eur) if units_per_eur is not None else rates[currency].units_per_eur
        total += units
    return total.numerator, total.denominator


def eur_value(blocks: Iterable[Block], rates: dict[str, Rate], *, own_rates: bool = True) -> Fraction:
    """Exact EUR value of the blocks' consideration (a missing rate raises KeyError); with
    ``own_rates=False`` every block is converted at ``rates``, whatever its payment-date rate."""
    if not own_rates:
        blocks = [replace(b, units_per_eur=None, rate_date=None) for b in blocks]
    return exact_sum(blocks, "amount_minor", rates)


def amount_under_limit(eur: Fraction, variant: LegalVariant) -> bool:
    """The amount test of the de minimis rule: at most EUR 2,000 ("did not exceed"), or strictly
    less under a reading that says so (Germany: "weniger als 2 000 Euro")."""
    return eur < DE_MINIMIS_MAX_EUR if variant.de_minimis_strict else eur <= DE_MINIMIS_MAX_EUR


def under_de_minimis(count: int, eur: Fraction, variant: LegalVariant) -> bool:
    """Fewer than 30 sales AND the amount test of the reading (both must be met)."""
    return count <= DE_MINIMIS_MAX_SALES and amount_under_limit(eur, variant)


def payment_rates(blocks: Iterable[Block]) -> tuple[tuple[str, int, date, date], ...]:
    """Per currency: how many payment-date rates were used, from which day to which."""
    days: dict[str, set[date]] = defaultdict(set)
    for b in blocks:
        if b.rate_date is not None:
            days[b.currency].add(b.rate_date)
    return tuple((c, len(d), min(d), max(d)) for c, d in sorted(days.items()))


def decide(facts: SellerFacts, ctx: RuleContext) -> Decision:
    """Apply the DAC7 rules to one seller, as ``ctx.variant`` (the filing state's reading) reads them."""
    groups = _groups(facts.blocks)
    res = residence(facts)
    base: dict[str, Any] = {"seller_id": facts.seller_id, "residence": res, "variant": ctx.variant.state}
    if not groups:
        return Decision(decision=NOT_REPORTABLE_NO_ACTIVITY, **base)
    if facts.is_governmental:
        return Decision(decision=EXCLUDED_GOVERNMENTAL, **base)
    if facts.is_listed:
        return Decision(decision=EXCLUDED_LISTED, **base)

    goods_only = all(activity == GOODS for activity, _ in groups)
    all_goods_count = sum(b.activities for (activity, _), blocks in groups.items() if activity == GOODS for b in blocks)

    excluded_listings: list[str] = []
    if facts.seller_type == "entity":
        for (activity, listing), blocks in groups.items():
            if activity == PROPERTY and sum(b.activities for b in blocks) > MAX_RENTALS_PER_LISTING:
                excluded_listings.append(listing)
    kept = {k: v for k, v in groups.items() if k[1] not in excluded_listings or k[0] != PROPERTY}
    base["excluded_listings"] = tuple(sorted(excluded_listings))
    if not kept:
        return Decision(decision=EXCLUDED_LISTING, **base)

    eu_residence = [c for c, _ in res if c in EU_MEMBER_STATES]
    if not eu_residence:
        # Resident outside the EU: reportable only for property located in the EU.
        eu_property = {k: v for k, v in kept.items() if k[0] == PROPERTY and v[0].listing_country in EU_MEMBER_STATES}
        base["not_reported_non_eu"] = tuple(
            f"{a} (listing {lid})" if lid else a for a, lid in sorted(set(kept) - set(eu_property))
        )
        kept = eu_property
        if not kept:
            return Decision(decision=NOT_REPORTABLE_NON_EU, **base)

    # the de minimis test is of the sales of goods that would be reported (not those of a seller
    # resident outside the EU, which are not reportable anyway)
    goods = [b for (activity, _), blocks in kept.items() if activity == GOODS for b in blocks]
    goods_count = sum(b.activities for b in goods)
    goods_eur: Fraction | None = None
    threshold = ctx.threshold_rates or ctx.rates
    if goods_only or (ctx.variant.goods_part_exclusion and goods):
        goods_eur = eur_value(goods, threshold, own_rates=ctx.threshold_rates is None)
        threshold_rates = tuple(
            threshold[c]
            for c in sorted({b.currency for b in goods if b.units_per_eur is None or ctx.threshold_rates})
            if c != "EUR"
        )
        base.update(goods_activities=goods_count, goods_eur=goods_eur, rates=threshold_rates)
        if under_de_minimis(goods_count, goods_eur, ctx.variant):
            if goods_only:
                return Decision(decision=EXCLUDED_DE_MINIMIS, **base)
            # A national reading that excludes the goods part of a mixed seller only.
            kept = {k: v for k, v in kept.items() if k[0] != GOODS}
            base["goods_part_excluded"] = True
            if not kept:
                return Decision(decision=EXCLUDED_DE_MINIMIS, **base)
    else:
        base.update(goods_activities=all_goods_count)

    property_states = sorted(
        {v[0].listing_country for k, v in kept.items() if k[0] == PROPERTY and v[0].listing_country in EU_MEMBER_STATES}
    )
    # What the filing state forwards the seller to (Art. 8ac(2)): its EU states of residence, and
    # the states where its reported property is located.
    exchange: dict[str, list[str]] = {}
    for country, why in res:
        if country in EU_MEMBER_STATES:
            exchange.setdefault(country, []).append(f"resident: {why}")
    for country in property_states:
        exchange.setdefault(country, []).append(f"property in {country}")
    base["exchange"] = tuple((c, ", ".join(exchange[c])) for c in sorted(exchange))
    routes: dict[str, list[str]] = {}
    if ctx.routing == "nexus":
        routes[ctx.operator_country] = ["the filing state (nexus)"]
    else:  # a preview of what each state receives from the filing state
        routes = exchange
    authorities = tuple(sorted(routes))

    currencies = {b.currency for blocks in kept.values() for b in blocks}
    if ctx.reporting_currency == "original" and len(currencies) == 1:
        currency, convert = next(iter(currencies)), False
    else:
        currency, convert = "EUR", currencies != {"EUR"}
    used = {r.currency: r for r in base.get("rates", ())}
    all_blocks = [b for blocks in kept.values() for b in blocks]
    if convert:
        used.update(
            (b.currency, ctx.rates[b.currency]) for b in all_blocks if b.currency != "EUR" and b.units_per_eur is None
        )
    base["rates"] = tuple(used[c] for c in sorted(used))

    reports = []
    findings = []
    for key in sorted(kept, key=lambda k: (ACTIVITY_ORDER.index(k[0]), k[1])):
        report = _report(key, kept[key], convert, ctx.rates)
        if report.rented_days > MAX_RENTED_DAYS:
            findings.append(
                Finding(
                    rule="listing.rented_days_out_of_range",
                    table="property_listings",
                    key=key[1],
                    seller_id=facts.seller_id,
                    message=f"RentedDays sums to {report.rented_days}; the schema allows 1 to {MAX_RENTED_DAYS}. "
                    "Check the rented_days of this listing's transactions",
                )
            )
        reports.append(report)
    return Decision(
        decision=REPORTED,
        authorities=authorities,
        routes=tuple((a, ", ".join(routes[a])) for a in authorities),
        payment_rates=payment_rates(all_blocks) if convert else (),
        currency=currency,
        converted=convert,
        reports=tuple(reports),
        findings=tuple(findings),
        **base,
    )


def _report(key: tuple[str, str], blocks: list[Block], convert: bool, rates: dict[str, Rate]) -> ActivityReport:
    activity, listing = key
    currency = "EUR" if convert else blocks[0].currency
    counts = [0, 0, 0, 0]
    rented_days = 0
    cons: list[Fraction] = []
    rounded: list[int] = []
    fees: list[int] = []
    taxes: list[int] = []
    own = {b.currency for b in blocks}
    if len(own) == 1 and (not convert or currency in own):
        # One currency, not converted (or EUR): every figure is an integer sum of minor units
        # over the currency's divisor, rounded without building a Fraction.
        amounts, fee_sums, tax_sums = [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]
        # (the currency is looked up, and refused if it is not one, only if a quarter has a block)
        divisor = _minor_divisor(blocks[0].currency) if any(b.quarter in (1, 2, 3, 4) for b in blocks) else 1
        for b in blocks:
            rented_days += b.rented_days
            if b.quarter in (1, 2, 3, 4):  # only the four quarters are reported
                i = b.quarter - 1
                counts[i] += b.activities
                amounts[i] += b.amount_minor
                fee_sums[i] += b.fee_minor
                tax_sums[i] += b.tax_minor
        for i in range(4):
            cons.append(Fraction(amounts[i], divisor))
            rounded.append(round_half_up_ratio(amounts[i], divisor))
            fees.append(round_half_up_ratio(fee_sums[i], divisor))
            taxes.append(round_half_up_ratio(tax_sums[i], divisor))
    else:
        # Per quarter and (currency, payment-date rate): the minor-unit sums, each converted once.
        per_quarter: tuple[dict[tuple[str, str | None], list[int]], ...] = ({}, {}, {}, {})
        for b in blocks:
            rented_days += b.rented_days
            if b.quarter in (1, 2, 3, 4):
                counts[b.quarter - 1] += b.activities
                sums = per_quarter[b.quarter - 1].setdefault((b.currency, b.units_per_eur), [0, 0, 0])
                sums[0] += b.amount_minor
                sums[1] += b.fee_minor
                sums[2] += b.tax_minor
        for sums_of in per_quarter:
            n, d = _exact_ratio({k: v[0] for k, v in sums_of.items()}, rates, convert)
            cons.append(Fraction(n, d))
            rounded.append(round_half_up_ratio(n, d))
            fees.append(round_half_up_ratio(*_exact_ratio({k: v[1] for k, v in sums_of.items()}, rates, convert)))
            taxes.append(round_half_up_ratio(*_exact_ratio({k: v[2] for k, v in sums_of.items()}, rates, convert)))
    return ActivityReport(
        activity=activity,
        listing_id=listing,
        currency=currency,
        consideration=_four(rounded),
        activities=_four(counts),
        fees=_four(fees),
        taxes=_four(taxes),
        rented_days=rented_days,
        exact_consideration=(cons[0], cons[1], cons[2], cons[3]),
    )


def _four(values: list[int]) -> tuple[int, int, int, int]:
    return (values[0], values[1], values[2], values[3])


def money_text(value: Fraction, currency: str = "EUR") -> str:
    """An exact amount for people: 4 decimals, half up (the comparison itself is exact)."""
    scaled = round_half_up_ratio(value.numerator * 10_000, value.denominator)
    whole, frac = divmod(abs(scaled), 10_000)
    return f"{currency} {'-' if scaled < 0 else ''}{whole:,}.{frac:04d}"


def explanation(d: Decision) -> str:
    """The decision in one plain sentence, with the numbers it rests on, in the words of the
    reading that decided it (the filing state's, :mod:`reporting.variants`)."""
    v = variant_of(d.variant)
    res = ", ".join(f"{c} ({why})" for c, why in d.residence) or "no residence country"
    goods = ""
    if d.goods_eur is not None:
        goods = f"{d.goods_activities} sale(s) of goods worth {money_text(d.goods_eur)}"
    rates = "; ".join(
        [f"rate {r.text}" for r in d.rates]
        + [
            f"{c} at the rate of each payment day ({n} rate(s), {first} to {last})"
            for c, n, first, last in d.payment_rates
        ]
    )
    limits = f"fewer than {DE_MINIMIS_MAX_SALES + 1} sales and {v.amount_limit_text}"
    if d.decision.startswith(QUARANTINED):
        text = (
            f"quarantined ({d.decision.removeprefix(QUARANTINED)}): the seller cannot be reported correctly "
            "until its data is corrected; reports/quarantine.csv lists every reason"
        )
    elif d.decision == NOT_REPORTABLE_NO_ACTIVITY:
        text = "no consideration and no activity left after refunds (EU rule 30040: nothing to report)"
    elif d.decision == EXCLUDED_GOVERNMENTAL:
        text = "excluded seller: a governmental entity (is_governmental)"
    elif d.decision == EXCLUDED_LISTED:
        text = "excluded seller: listed on an established securities market, or related to such an entity"
    elif d.decision == EXCLUDED_LISTING:
        text = (
            f"every activity was the rental of listing(s) {', '.join(d.excluded_listings)} with more than "
            f"{MAX_RENTALS_PER_LISTING:,} rentals by an entity: excluded"
        )
    elif d.decision == NOT_REPORTABLE_NON_EU:
        text = f"resident outside the EU ({res}) and no property located in the EU"
    elif d.decision == EXCLUDED_DE_MINIMIS and d.goods_part_excluded:
        text = (
            f"de minimis for the sale of goods ({v.source}: exempt for that activity only), {goods}: {limits}; "
            "no other activity is left to report"
        )
    elif d.decision == EXCLUDED_DE_MINIMIS:
        text = f"de minimis: only sales of goods, {goods}: {limits}"
    else:
        why = [f"resident in {res}"]
        if goods and d.goods_part_excluded:
            why.append(
                f"{goods}: {limits}: the sales of goods are exempt and not reported ({v.source}: exempt for "
                "that activity only); the other activities are reported"
            )
        elif goods:
            count_test = "at least 30 sales" if d.goods_activities > DE_MINIMIS_MAX_SALES else "fewer than 30 sales"
            amount_test = (
                v.amount_limit_text.split(" (")[0]
                if d.goods_eur is not None and amount_under_limit(d.goods_eur, v)
                else v.amount_crossed_text
            )
            why.append(f"{goods} ({count_test}, {amount_test}: not de minimis)")
        elif d.goods_activities and not d.not_reported_non_eu:
            why.append(
                "sells goods and has other activities: the de minimis exclusion is read as that of a seller "
                "whose only activity is the sale of goods (the EU wording is unclear on a mixed seller)"
            )
        if d.excluded_listings:
            why.append(f"listing(s) {', '.join(d.excluded_listings)} excluded (more than 2,000 rentals)")
        if d.not_reported_non_eu:
            why.append(
                "resident outside the EU: only property located in the EU is reported, not "
                + ", ".join(d.not_reported_non_eu)
            )
        why.append(
            "activities: "
            + ", ".join(f"{r.activity}" + (f" (listing {r.listing_id})" if r.listing_id else "") for r in d.reports)
        )
        cur = f"reported in {d.currency}" + (
            " (converted: paid in several currencies or EUR chosen)" if d.converted else ""
        )
        to = ", ".join(f"{a} ({why})" for a, why in d.routes)
        forwarded = ", ".join(f"{c} ({why})" for c, why in d.exchange)
        if d.routes and d.routes[0][1] == "the filing state (nexus)" and forwarded:
            to += f", which forwards it to {forwarded}"
        text = f"reported to {to}: " + "; ".join(why) + f"; {cur}"
    return f"{text}; {rates}" if rates else text


# --------------------------------------------------------------------------- the stage

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
        s.seller_id, s.seller_type, s.residence_country, s.is_governmental, s.is_listed,
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


def _seller_ranges(con: Any, per_read: int) -> list[tuple[str | None, str | None]]:
    """Consecutive ranges of seller ids ``[low, high)`` (None: unbounded) of about ``per_read``
    sellers each, in the order of ``order by seller_id``."""
    ((count,),) = con.execute("select count(distinct seller_id) from activity_totals").fetchall()
    parts = -(-int(count) // per_read)
    if parts <= 1:
        return [(None, None)]
    fractions = [i / parts for i in range(1, parts)]
    ((bounds,),) = con.execute(
        "select quantile_disc(seller_id, ?::double[]) from (select distinct seller_id from activity_totals)",
        [fractions],
    ).fetchall()
    edges = sorted(set(bounds))
    return list(zip([None, *edges], [*edges, None], strict=True))


def iter_facts(con: Any, batch_rows: int = 20_000, per_read: int | None = None) -> Iterator[SellerFacts]:
    """Every seller with activity, in the order of its id, read in ranges of ``per_read`` sellers
    (default :data:`FACTS_SELLERS_PER_READ`): the same sellers in the same order as one reading."""
    for low, high in _seller_ranges(con, per_read or FACTS_SELLERS_PER_READ):
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
                is_governmental=bool(r["is_governmental"]),
                is_listed=bool(r["is_listed"]),
                tin_issuers=tuple(r["tin_issuers"]),
                pe_countries=tuple(r["pe_countries"]),
                blocks=tuple(Block(**b) for b in r["blocks"]),
            )


def apply_rules(settings: RunSettings) -> dict[str, Any]:
    """Decide every seller; write decisions, reported figures and routing to ``<run>/rules/``."""
    from reporting.checks import data as datachecks

    # Great Expectations is imported by a worker while the sellers are decided (see datachecks)
    worker = datachecks.ChecksWorker.start()
    try:
        return _apply_rules(settings, worker)
    finally:
        if worker is not None:
            worker.close()


def _apply_rules(settings: RunSettings, worker: ChecksWorker | None) -> dict[str, Any]:
    out = settings.stage_dir("rules")
    con = connect(settings.run_path, "extract", "aggregate")
    decisions_counter: Counter[str] = Counter()
    per_authority: Counter[str] = Counter()
    findings: list[Finding] = []
    incomplete_reportable: dict[str, list[str]] = {}
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
                    d = Decision(facts.seller_id, f"{QUARANTINED}{rule}", residence(facts), variant=ctx.variant.state)
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
    if incomplete_reportable:
        identity = read_findings(settings.run_path / "extract" / "quarantine_identity.parquet")
        findings += [f for f in identity if f.seller_id in incomplete_reportable]
    # Audit what was decided before anything renders it: every routed seller's record must be
    # renderable for each of its authorities, and the aggregates and decisions must pass their
    # data checks (the reconciliation among them). A seller that fails is quarantined here.
    from reporting.checks import data as datachecks
    from reporting.stages import render

    started = time.perf_counter()
    late = render.record_problems(settings)
    record_seconds = time.perf_counter() - started
    incomplete_reportable.update(_quarantine_decided(out, late, decisions_counter, per_authority))
    report = datachecks.audit(settings, "aggregates", worker)
    late += report.errors
    incomplete_reportable.update(_quarantine_decided(out, report.errors, decisions_counter, per_authority))
    findings += late
    # sellers that crossed the thresholds (decided reportable) but whose data is incomplete
    _rewrite(
        out / "reportable_incomplete.parquet",
        pa.Table.from_pylist(
            [{"seller_id": k, "authorities": v} for k, v in sorted(incomplete_reportable.items())],
            schema=pa.schema([("seller_id", pa.string()), ("authorities", pa.list_(pa.string()))]),
        ),
    )
    write_quarantine(out / "quarantine_rules.parquet", findings)
    enforce_quarantine_policy(settings, findings + quarantine_findings(settings))
    summary = {
        "sellers": sum(decisions_counter.values()),
        "decisions": dict(sorted(decisions_counter.items())),
        "reportable": decisions_counter[REPORTED],
        "sellers_per_authority": dict(sorted(per_authority.items())),
        "record_checks_seconds": round(record_seconds, 3),
        "reading": ctx.variant.as_dict(),
    }
    write_json(out / "rules.json", summary)
    log.info("rules year=%s: %s", settings.year, summary)
    return summary


def _quarantine_decided(
    out: Any, findings: list[Finding], decisions: Counter[str], per_authority: Counter[str]
) -> dict[str, list[str]]:
    """Quarantine sellers after their decision (a record that cannot be rendered, a failed data
    check of the aggregates): their decision becomes ``quarantined:<rule>`` with its explanation,
    and their reported figures and routes are removed. The staged files are rewritten in place
    (same order, atomically); the counters follow."""
    rules_of: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        if f.seller_id is not None:
            rules_of[f.seller_id].add(f.rule)
    if not rules_of:
        return {}
    sellers = pa.array(sorted(rules_of), pa.string())
    path = out / "decisions.parquet"
    table = pq.read_table(path)
    hit = pc.is_in(table["seller_id"], value_set=sellers)
    old = table.filter(hit).select(["seller_id", "decision", "authorities"]).to_pylist()
    new_decision: dict[str, str] = {}
    new_explanation: dict[str, str] = {}
    reportable: dict[str, list[str]] = {}
    for row in old:
        sid = row["seller_id"]
        if row["decision"].startswith(QUARANTINED):
            continue
        rule = min(rules_of[sid])
        new_decision[sid] = f"{QUARANTINED}{rule}"
        if row["authorities"]:
            reportable[sid] = list(row["authorities"])
        would = ", ".join(row["authorities"] or [])
        new_explanation[sid] = (
            f"quarantined ({rule}): {row['decision']}" + (f" to {would}" if would else "") + " once its data is "
            "corrected; it cannot be reported correctly as it is. reports/quarantine.csv lists every reason"
        )
        decisions[row["decision"]] -= 1
        decisions[new_decision[sid]] += 1
        for a in row["authorities"] or []:
            per_authority[a] -= 1
    if not new_decision:
        return {}
    for counter in (decisions, per_authority):
        for k in [k for k, v in counter.items() if v <= 0]:
            del counter[k]
    ids = table["seller_id"].to_pylist()
    decision = [new_decision.get(sid, d) for sid, d in zip(ids, table["decision"].to_pylist(), strict=True)]
    text = [new_explanation.get(sid, e) for sid, e in zip(ids, table["explanation"].to_pylist(), strict=True)]
    routes = [[] if sid in new_decision else a for sid, a in zip(ids, table["authorities"].to_pylist(), strict=True)]
    table = table.set_column(table.schema.get_field_index("decision"), "decision", pa.array(decision, pa.string()))
    table = table.set_column(table.schema.get_field_index("explanation"), "explanation", pa.array(text, pa.string()))
    table = table.set_column(
        table.schema.get_field_index("authorities"), "authorities", pa.array(routes, pa.list_(pa.string()))
    )
    _rewrite(path, table)
    gone = pa.array(sorted(new_decision), pa.string())
    for name in ("reported.parquet", "routing.parquet"):
        t = pq.read_table(out / name)
        _rewrite(out / name, t.filter(pc.invert(pc.is_in(t["seller_id"], value_set=gone))))
    log.info("rules: %d seller(s) quarantined after their decision", len(new_decision))
    return reportable


def _rewrite(path: Any, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)


def filing_context(settings: RunSettings, con: Any) -> RuleContext:
    """The rule context of a run: the filing state's reading of the rules for every seller, with
    the rates that reading takes for the EUR 2,000 test."""
    rep = settings.config.reporting
    reading = reading_for(settings.config.operator.country)
    return RuleContext(
        year=settings.year,
        routing=rep.routing,
        reporting_currency=rep.reporting_currency,
        operator_country=settings.config.operator.country,
        rates=load_rates(con, settings.year),
        variant=reading,
        threshold_rates=load_average_rates(con, settings.year) if reading.threshold_rate == "annual_average" else None,
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
