"""Bad sellers on purpose: the defects ``generate_demo(..., bad_share=...)`` puts into a share of
the sellers, each with the quarantine rules that must catch it (:data:`BAD_KINDS`).

:class:`BadSellers` draws from a random stream of its own and changes only the rows of the sellers
it makes bad, so every other seller's rows are exactly what they are without bad sellers; it
records who it made bad (the ground truth of a quarantine test).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle
from typing import Any

from dac7_demo.database import POSITION, Sink
from reporting.countries import EU_MEMBER_STATES
from reporting.vocabulary import GOODS, PROPERTY


@dataclass(frozen=True, slots=True)
class BadKind:
    """A defect that ``generate_demo(..., bad_share=...)`` puts into a seller's rows, and the
    quarantine rules that must catch it: the seller's quarantine reasons must include at least
    one of ``rules`` (a name ending in ``*`` stands for every rule that starts with it)."""

    defect: str
    rules: tuple[str, ...]

    def caught_by(self, rule: str) -> bool:
        """Whether quarantining a seller with ``rule`` catches this defect."""
        return any(rule == r or (r.endswith("*") and rule.startswith(r[:-1])) for r in self.rules)


#: The kinds of bad sellers, each with the rules that catch it: extract checks
#: (:mod:`reporting.checks.staged`), the rules stage (:mod:`reporting.rules`), the seller record
#: (:func:`reporting.mapping.seller_record`) and the Great Expectations suites
#: (``gx.<expectation_type>.<column>``, :mod:`reporting.expectations`).
BAD_KINDS: dict[str, BadKind] = {
    "no_address": BadKind(
        "no primary address: street, building, post code, city and country all missing",
        ("seller.address_*", "gx.expect_column_values_to_not_be_null.address_country"),
    ),
    "name_missing": BadKind(
        "an individual without last name, or an entity without legal name",
        (
            "seller.name_missing",
            "gx.expect_column_values_to_not_be_null.last_name",
            "gx.expect_column_values_to_not_be_null.legal_name",
        ),
    ),
    "birth_date_out_of_range": BadKind(
        "an individual born before 1900 or decades in the future (EU rule 40130)",
        ("seller.birth_date_out_of_range", "gx.expect_column_values_to_be_between.birth_year"),
    ),
    "bad_residence_country": BadKind(
        "residence_country is not an ISO 3166 code ('UK' or 'EL', the usual mistakes)",
        ("seller.bad_residence_country", "gx.expect_column_values_to_be_in_set.residence_country"),
    ),
    "unknown_currency": BadKind(
        "a transaction in the currency 'XXQ', which ISO 4217 does not know",
        ("currency.unknown", "gx.expect_column_values_to_be_in_set.currency"),
    ),
    "negative_amount": BadKind(
        "a transaction with a negative amount or fee",
        (
            "transaction.negative_amount",
            "gx.expect_column_values_to_be_between.amount_minor",
            "gx.expect_column_values_to_be_between.fee_minor",
        ),
    ),
    "refund_exceeds_transaction": BadKind(
        "a refund larger than the transaction it refunds",
        (
            "refund.exceeds_transaction",
            "refund.total_exceeds_transaction",
            "gx.expect_column_pair_values_a_to_be_greater_than_b.*",
        ),
    ),
    "rented_days_out_of_range": BadKind(
        "a rental of more than 10,000 days: the listing's RentedDays exceed what a year (and the schema) allows",
        ("listing.rented_days_out_of_range",),
    ),
    "listing_missing": BadKind(
        "an immovable_property transaction without listing_id",
        ("transaction.listing_missing", "gx.expect_column_values_to_not_be_null.listing_id"),
    ),
}

_BAD_CURRENCY = "XXQ"
_BAD_RESIDENCE = ("UK", "EL")  # the United Kingdom is GB, Greece is GR (EL is its VAT prefix)
_BUSY_LISTING = 1000  # an entity's listing with more bookings may be excluded (more than 2,000 rentals)


class SellerRows:
    """The rows of the seller just generated (the tail of the sink's buffers), to read and change."""

    def __init__(self, sink: Sink, start: dict[str, int], year: int) -> None:
        self.sink = sink
        self.row = start["sellers"]
        self.seller_id: str = self.get("sellers", self.row, "seller_id")
        self.entity = self.get("sellers", self.row, "seller_type") == "entity"
        refunded = {r[POSITION["refunds"]["transaction_id"]] for r in sink.rows["refunds"][start["refunds"] :]}
        # payments well inside the year whatever the configured time zone, never refunded
        first, last = f"{year}-01-02", f"{year}-12-30"
        tx = POSITION["transactions"]
        self.payments = [
            i
            for i in range(start["transactions"], len(sink.rows["transactions"]))
            if first <= sink.rows["transactions"][i][tx["paid_at"]] < last
            and sink.rows["transactions"][i][tx["transaction_id"]] not in refunded
        ]
        bookings: dict[str, int] = {}
        for t in sink.rows["transactions"][start["transactions"] :]:
            if t[tx["listing_id"]] is not None:
                bookings[t[tx["listing_id"]]] = bookings.get(t[tx["listing_id"]], 0) + 1
        self.busy = {lid for lid, n in bookings.items() if self.entity and n > _BUSY_LISTING}

    def get(self, table: str, i: int, column: str) -> Any:
        return self.sink.rows[table][i][POSITION[table][column]]

    def set(self, table: str, i: int, **values: object) -> None:
        row = list(self.sink.rows[table][i])
        for column, value in values.items():
            row[POSITION[table][column]] = value
        self.sink.rows[table][i] = tuple(row)

    def rentals(self) -> list[int]:
        """Payments for a property listing that no exclusion can take out of the report."""
        return [
            i
            for i in self.payments
            if self.get("transactions", i, "activity") == PROPERTY
            and self.get("transactions", i, "listing_id") not in self.busy
        ]

    def likely_reported(self) -> bool:
        """A sufficient sign that the rules will report this seller (whatever the time zone,
        the as-of date and the rates): resident in a member state, neither governmental nor
        listed, and a service, transport or property payment (outside an entity's busy listing)
        or at least 30 sales of goods, none of them ever refunded."""
        get = self.get
        if (
            get("sellers", self.row, "residence_country") not in EU_MEMBER_STATES
            or get("sellers", self.row, "is_governmental")
            or get("sellers", self.row, "is_listed")
        ):
            return False
        goods = 0
        for i in self.payments:
            if get("transactions", i, "activity") != GOODS:
                if get("transactions", i, "listing_id") not in self.busy:
                    return True
            else:
                goods += 1
        return goods >= 30


class BadSellers:
    """Makes a share of the sellers bad on purpose, one defect each.

    It draws from a random stream of its own (``Random(f"{seed}/bad")``) and changes only the
    rows of the sellers it makes bad (and adds refunds with ids of its own), so every other
    seller's rows are exactly what they are without bad sellers. ``round(share * sellers)``
    seller numbers are drawn (at least one for a share above 0) and given the kinds of
    :data:`BAD_KINDS` in turn, shuffled. Only a seller that the rules would otherwise report
    (:meth:`SellerRows.likely_reported`) and that fits the kind (a property rental for the
    listing kinds, an individual for the birth date) is made bad: a drawn seller that does not
    fit passes its kind on to the next seller that does.
    """

    def __init__(self, seed: int, year: int, sellers: int, share: float) -> None:
        self.rng = random.Random(f"{seed}/bad")
        self.year = year
        n = min(sellers, max(1, round(share * sellers))) if share > 0 else 0
        drawn = sorted(self.rng.sample(range(1, sellers + 1), n))
        kinds = [kind for kind, _ in zip(cycle(BAD_KINDS), range(n), strict=False)]
        self.rng.shuffle(kinds)
        self.due = dict(zip(drawn, kinds, strict=True))  # seller number -> kind
        self.waiting: list[str] = []  # kinds drawn for sellers that did not fit them
        self.made: dict[str, str] = {}  # seller_id -> kind: the ground truth
        self.n_refund = 0
        self.makers: dict[str, Callable[[SellerRows], bool]] = {
            "no_address": self.no_address,
            "name_missing": self.name_missing,
            "birth_date_out_of_range": self.birth_date_out_of_range,
            "bad_residence_country": self.bad_residence_country,
            "unknown_currency": self.unknown_currency,
            "negative_amount": self.negative_amount,
            "refund_exceeds_transaction": self.refund_exceeds_transaction,
            "rented_days_out_of_range": self.rented_days_out_of_range,
            "listing_missing": self.listing_missing,
        }

    def after_seller(self, index: int, sink: Sink, start: dict[str, int]) -> None:
        """Called once the rows of seller number ``index`` are in the sink (not yet flushed)."""
        kind = self.due.pop(index, None)
        if kind is not None:
            self.waiting.append(kind)
        if not self.waiting:
            return
        seller = SellerRows(sink, start, self.year)
        if not seller.likely_reported():
            return
        for j, kind in enumerate(self.waiting):
            if self.makers[kind](seller):
                del self.waiting[j]
                self.made[seller.seller_id] = kind
                return

    # -- one maker per kind: False when the seller does not fit the kind ----------------------

    def no_address(self, s: SellerRows) -> bool:
        address = ("address_street", "address_building", "address_post_code", "address_city", "address_country")
        s.set("sellers", s.row, **dict.fromkeys(address))
        return True

    def name_missing(self, s: SellerRows) -> bool:
        s.set("sellers", s.row, **{"legal_name" if s.entity else "last_name": None})
        return True

    def birth_date_out_of_range(self, s: SellerRows) -> bool:
        if s.entity:
            return False
        rng = self.rng
        year = rng.randint(1850, 1899) if rng.random() < 0.5 else self.year + rng.randint(30, 90)
        born = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
        s.set("sellers", s.row, birth_date=born.isoformat())
        return True

    def bad_residence_country(self, s: SellerRows) -> bool:
        s.set("sellers", s.row, residence_country=self.rng.choice(_BAD_RESIDENCE))
        return True

    def unknown_currency(self, s: SellerRows) -> bool:
        if not s.payments:
            return False
        s.set("transactions", self.rng.choice(s.payments), currency=_BAD_CURRENCY)
        return True

    def negative_amount(self, s: SellerRows) -> bool:
        if not s.payments:
            return False
        i = self.rng.choice(s.payments)
        column = "amount_minor" if self.rng.random() < 0.5 else "fee_minor"
        s.set("transactions", i, **{column: -max(s.get("transactions", i, column), 1)})
        return True

    def refund_exceeds_transaction(self, s: SellerRows) -> bool:
        if not s.payments:
            return False
        rng = self.rng
        t = s.sink.rows["transactions"][rng.choice(s.payments)]
        tx = POSITION["transactions"]
        amount, fee, tax = t[tx["amount_minor"]], t[tx["fee_minor"]], t[tx["tax_minor"]]
        paid = dt.datetime.fromisoformat(t[tx["paid_at"]])
        at = paid + dt.timedelta(days=rng.randint(1, 20), seconds=rng.randrange(86400))
        self.n_refund += 1
        refund = (f"RX{self.n_refund:08d}", t[tx["transaction_id"]], f"{at:%Y-%m-%d %H:%M:%S}")
        s.sink.rows["refunds"].append((*refund, amount + rng.randint(1, max(1, amount // 2)), fee, tax))
        s.sink.pending += 1
        return True

    def rented_days_out_of_range(self, s: SellerRows) -> bool:
        rentals = s.rentals()
        if not rentals:
            return False
        s.set("transactions", self.rng.choice(rentals), rented_days=10_000 + self.rng.randrange(1000))
        return True

    def listing_missing(self, s: SellerRows) -> bool:
        rentals = s.rentals()
        if not rentals:
            return False
        s.set("transactions", self.rng.choice(rentals), listing_id=None)
        return True
