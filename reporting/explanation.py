"""A decision of the rules in plain words: the sentence, with the numbers it rests on, that the
decisions file, the seller reports and ``dac7 explain`` show (:func:`explanation`)."""

from __future__ import annotations

from fractions import Fraction

from reporting.jurisdictions import rule_set_for
from reporting.money import round_half_up_ratio
from reporting.rules import DE_MINIMIS_MAX_SALES, MAX_RENTALS_PER_LISTING, Decision, amount_under_limit
from reporting.variants import variant_of
from reporting.vocabulary import (
    EXCLUDED_DE_MINIMIS,
    EXCLUDED_GOVERNMENTAL,
    EXCLUDED_LISTED,
    EXCLUDED_LISTING,
    NOT_REPORTABLE_JURISDICTION,
    NOT_REPORTABLE_NO_ACTIVITY,
    NOT_REPORTABLE_NON_EU,
    QUARANTINED,
)


def money_text(value: Fraction, currency: str = "EUR") -> str:
    """An exact amount for people: 4 decimals, half up (the comparison itself is exact)."""
    scaled = round_half_up_ratio(value.numerator * 10_000, value.denominator)
    whole, frac = divmod(abs(scaled), 10_000)
    return f"{currency} {'-' if scaled < 0 else ''}{whole:,}.{frac:04d}"


def explanation(d: Decision) -> str:
    """The decision in one plain sentence, with the numbers it rests on, in the words of the
    reading that decided it (the filing state's, :mod:`reporting.variants`)."""
    v = variant_of(d.variant)
    area = rule_set_for(d.variant).area
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
    elif d.decision == NOT_REPORTABLE_JURISDICTION:
        text = (
            f"resident outside {area} ({res}), or in one that does not receive these activities, and no property "
            f"located in {area}: not reported ({', '.join(d.not_reported_non_eu)})"
        )
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
        if d.not_reported_non_eu and area == "the EU":
            why.append(
                "resident outside the EU: only property located in the EU is reported, not "
                + ", ".join(d.not_reported_non_eu)
            )
        elif d.not_reported_non_eu:
            why.append(
                f"not reported, being outside the scope {area} receive from this seller: "
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
