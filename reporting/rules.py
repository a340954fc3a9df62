"""The DAC7 rules: who is reported, to whom, and with which figures.

Pure functions over frozen records (:class:`SellerFacts` in, :class:`Decision` out), so that
every rule is testable by hand-computed cases. Nothing here reads or writes a file: the rules
stage (:mod:`reporting.stages.rules`) feeds them from the staged aggregates and writes the
decisions; :mod:`reporting.explanation` says a decision in plain words.

One reading decides every seller of a run: the reading of the member state the operator files in
(:func:`reporting.variants.reading_for`), wherever the seller lives. The rule set of the filing
jurisdiction (:mod:`reporting.jurisdictions`: DAC7, or the OECD Model Rules as the UK transposed
them) says who is resident where, which jurisdictions are reportable and for which activities.
A filing (routing ``nexus``) goes to that state alone; each decision also records the states it forwards the seller to
(``exchange``: residence, property). A preview (routing ``jurisdiction``) routes each seller to
those states instead, under the same reading.

Decision reason codes are stable (:mod:`reporting.vocabulary`): ``reported``,
``excluded:governmental``, ``excluded:listed``, ``excluded:de_minimis``,
``excluded_listing:over_2000_rentals``, ``not_reportable:non_eu``, ``not_reportable:no_activity``,
and under the Model Rules ``not_reportable:not_reportable_jurisdiction`` (the rule set's
:attr:`~reporting.jurisdictions.RuleSet.not_reportable`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from reporting.countries import EU_MEMBER_STATES
from reporting.findings import Finding
from reporting.jurisdictions import DAC7, Reportable, RuleSet
from reporting.money import minor_divisor, minor_to_units, round_half_up, round_half_up_ratio, to_fraction
from reporting.variants import EU_READING, LegalVariant
from reporting.vocabulary import (
    ACTIVITY_ORDER,
    EXCLUDED_DE_MINIMIS,
    EXCLUDED_GOVERNMENTAL,
    EXCLUDED_LISTED,
    EXCLUDED_LISTING,
    GOODS,
    NEXUS,
    NOT_REPORTABLE_NO_ACTIVITY,
    PROPERTY,
    REPORTED,
)

DE_MINIMIS_MAX_SALES = 29  # "fewer than 30" sales of goods ...
DE_MINIMIS_MAX_EUR = Fraction(2000)  # ... AND consideration that "did not exceed" EUR 2,000
MAX_RENTALS_PER_LISTING = 2000  # an entity's listing with MORE than 2,000 rentals is excluded
MAX_RENTED_DAYS = 9999  # the schema's limit for RentedDays


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
    #: the jurisdiction of the government verification service the operator relied on, if any
    #: (``sellers.gvs_jurisdiction``; read under the Model Rules only, IEIM902520)
    gvs_jurisdiction: str | None = None


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
    #: the filing jurisdiction's rule set (:func:`reporting.jurisdictions.rule_set_for`)
    rule_set: RuleSet = DAC7
    #: its reportable jurisdictions for the period; None: the EU member states (DAC7)
    reportable: Reportable | None = None


#: DAC7's reportable jurisdictions: every member state, for every activity
EU_REPORTABLE = DAC7.reportable(0)


def residence(facts: SellerFacts, rule_set: RuleSet = DAC7) -> tuple[tuple[str, str], ...]:
    """A seller's jurisdictions of residence under ``rule_set``, as (country, reason) pairs.

    DAC7 (Annex V, Section II(D)): the primary address state, each EU state that issued a TIN,
    and for an entity each EU state of a permanent establishment. The Model Rules (HMRC
    IEIM902520): the primary address alone, unless the operator relied on a government
    verification service, whose jurisdiction then is the seller's residence."""
    if rule_set.residence_from_gvs and facts.gvs_jurisdiction:
        return ((facts.gvs_jurisdiction, "government verification service"),)
    out: dict[str, str] = {}
    if facts.residence_country:
        out[facts.residence_country] = "primary address"
    if rule_set.residence_from_tin:
        for issuer in facts.tin_issuers:
            if issuer in EU_MEMBER_STATES and issuer not in out:
                out[issuer] = f"TIN issued by {issuer}"
    if rule_set.residence_from_pe and facts.seller_type == "entity":
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
            return sum(per_rate.values()), minor_divisor(currency)
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
    res = residence(facts, ctx.rule_set)
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

    # What the reportable jurisdictions receive: every activity in scope for a jurisdiction of
    # residence, and the rental of property located in one. Under DAC7 an EU resident is reported
    # for all it does; a seller resident outside the EU only for its property in the EU.
    reportable = ctx.reportable or EU_REPORTABLE
    homes = [c for c, _ in res if c in reportable]
    covered = {
        k: v
        for k, v in kept.items()
        if k[0] in ctx.rule_set.scope
        and (
            any(reportable.covers(c, k[0]) for c in homes)
            or (k[0] == PROPERTY and reportable.covers(v[0].listing_country, PROPERTY))
        )
    }
    if len(covered) < len(kept):
        base["not_reported_non_eu"] = tuple(
            f"{a} (listing {lid})" if lid else a for a, lid in sorted(set(kept) - set(covered))
        )
        kept = covered
        if not kept:
            return Decision(decision=ctx.rule_set.not_reportable, **base)

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
        {
            country
            for k, v in kept.items()
            if k[0] == PROPERTY and (country := v[0].listing_country) is not None and country in reportable
        }
    )
    # What the filing state forwards the seller to (Art. 8ac(2); the Model Rules' exchange with the
    # partner jurisdictions): its reportable states of residence, and the states where its
    # reported property is located.
    exchange: dict[str, list[str]] = {}
    for country, why in res:
        if country in reportable:
            exchange.setdefault(country, []).append(f"resident: {why}")
    for country in property_states:
        exchange.setdefault(country, []).append(f"property in {country}")
    base["exchange"] = tuple((c, ", ".join(exchange[c])) for c in sorted(exchange))
    routes: dict[str, list[str]] = {}
    if ctx.routing == NEXUS:
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
        divisor = minor_divisor(blocks[0].currency) if any(b.quarter in (1, 2, 3, 4) for b in blocks) else 1
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
