"""A deterministic synthetic marketplace in the source contract (``sql/source_schema.sql``).

``generate_demo(url, sellers=..., seed=..., year=...)`` fills the contract tables of any
SQLAlchemy database (SQLite, PostgreSQL, MariaDB/MySQL) with sellers, their TINs, accounts,
permanent establishments, property listings, transactions, refunds and ECB-style FX rates.

Guarantees:

* The same ``(sellers, seed, year)`` gives exactly the same rows on every database: all values
  are drawn from one ``random.Random(seed)`` in a fixed order, using only integer arithmetic for
  money (amounts are ISO 4217 minor units) and decimal text for FX rates; no float ever becomes
  a stored value. Batch sizes do not change the result.
* Memory is bounded: sellers are generated in batches and rows are flushed with ``executemany``
  of plain tuples every few thousand rows.
* Timestamps are naive UTC text ``YYYY-MM-DD HH:MM:SS`` (stored as the database's TIMESTAMP).

The shape (who sells what, how much, when) is described in :func:`generate_demo`; the countries
it draws from are in :mod:`dac7_demo.countries`. Identifiers (:mod:`dac7_demo.identifiers`) use
plausible national formats; where python-stdnum can check a format (German IdNr, Spanish
DNI/CIF, Polish PESEL/NIP, IBAN check digits, ...) the generated values pass that check.

With ``bad_share`` (e.g. 0.01), that share of the sellers is made bad on purpose, each with one
defect of :data:`dac7_demo.defects.BAD_KINDS` (no address, an unknown currency, a refund larger
than its transaction ...) that names the quarantine rules which must catch it. They are drawn
from a random stream of their own, so every other seller's rows stay exactly as they are without them,
and :func:`generate_demo` returns who they are (the ground truth of a quarantine test).
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from operator import itemgetter

from dac7_demo import identifiers
from dac7_demo.countries import (
    BIRTH_ABROAD,
    BIRTH_ONLY,
    COUNTRIES,
    EU,
    FX,
    HOLIDAY_EU,
    HOLIDAY_EU_CW,
    LAND_REGISTRY,
    LEVEL,
    LISTING_NON_EU,
    NAMES,
    RESIDENCE_CW,
    RESIDENCES,
)
from dac7_demo.database import COLUMNS, Sink, prepare_schema, start_load
from dac7_demo.defects import BadSellers
from reporting.countries import EU_MEMBER_STATES
from reporting.source import CONTRACT, make_engine
from reporting.vocabulary import GOODS, PROPERTY, SERVICES, TRANSPORT

__all__ = ["DEMO_DEFAULTS", "DemoResult", "generate_demo"]

#: Defaults for a quick demo database (about 60,000 transactions).
#: The language a demo seller of a country reads (sellers.language, an IETF tag); where a country
#: has several, the seller's id picks one.
LANGUAGES: dict[str, tuple[str, ...]] = {
    "AT": ("de-AT",),
    "BE": ("nl-BE", "fr-BE"),
    "BG": ("bg",),
    "CY": ("el-CY",),
    "CZ": ("cs",),
    "DE": ("de",),
    "DK": ("da",),
    "EE": ("et",),
    "ES": ("es",),
    "FI": ("fi",),
    "FR": ("fr",),
    "GR": ("el",),
    "HR": ("hr",),
    "HU": ("hu",),
    "IE": ("en-IE",),
    "IT": ("it",),
    "LT": ("lt",),
    "LU": ("fr-LU", "de-LU"),
    "LV": ("lv",),
    "MT": ("mt", "en-MT"),
    "NL": ("nl",),
    "PL": ("pl",),
    "PT": ("pt-PT",),
    "RO": ("ro",),
    "SE": ("sv",),
    "SI": ("sl",),
    "SK": ("sk",),
    "CH": ("de-CH", "fr-CH"),
    "GB": ("en-GB",),
    "US": ("en-US",),
}


def seller_language(seller_id: str, country: str) -> str | None:
    """A demo seller's ``sellers.language``: the language of its country for most (9 in 10),
    English or none for the others. Drawn from the seller's id, not the generator's random
    stream, so that every other value of the demo stays as it was."""
    h = zlib.crc32(seller_id.encode())
    if h % 10 == 0:
        return None if h % 20 == 0 else "en"
    choices = LANGUAGES.get(country, ("en",))
    return choices[(h // 10) % len(choices)]


DEMO_DEFAULTS: dict[str, int] = {"sellers": 2000, "seed": 7, "year": 2025}

#: Sellers generated (and committed) per batch, and pending rows that trigger a flush.
BATCH_SELLERS = 5000
FLUSH_ROWS = 20000


_ENTITY_WORDS = (
    "Nord",
    "Alpen",
    "Baltic",
    "Euro",
    "Blue",
    "Green",
    "Sun",
    "Delta",
    "Atlas",
    "Nova",
    "Vista",
    "Orbit",
    "Lumen",
    "Terra",
    "Aqua",
    "Prime",
    "Urban",
    "Cedar",
    "Falcon",
    "Helix",
    "Amber",
    "Silver",
    "Cobalt",
    "Linden",
)
_ENTITY_SUFFIX: dict[str, tuple[str, ...]] = {
    GOODS: ("Trading", "Goods", "Market", "Supplies", "Crafts", "Store"),
    SERVICES: ("Services", "Studio", "Solutions", "Care", "Works"),
    TRANSPORT: ("Mobility", "Cars", "Bikes", "Fleet"),
    PROPERTY: ("Properties", "Apartments", "Rentals", "Living", "Homes", "Stays"),
}
_GOV_SUFFIX = (
    "Municipal Housing Office",
    "City Transport Authority",
    "Public Property Agency",
    "Municipal Services Department",
)

_PROPERTY_TYPES = ("DPI901", "DPI902", "DPI903", "DPI904", "DPI905", "DPI906", "DPI907", "DPI908", "DPI909", "DPI910")
_PROPERTY_CW = tuple(accumulate((5, 2, 7, 20, 40, 3, 3, 3, 8, 6)))
_OTHER_PROPERTY = ("Garage", "Storage unit", "Event hall", "Farm building", "Garden plot", "Wine cellar", "Treehouse")

#: Count bands (low, high exclusive) and weights per kind of seller.
_BANDS: dict[str, tuple[tuple[tuple[int, int], ...], tuple[float, ...]]] = {
    # heavy-tailed goods sellers: roughly Pareto(1.5) from 30 sales up to a few thousand
    "goods_pro": (
        ((30, 60), (60, 120), (120, 250), (250, 500), (500, 1000), (1000, 2000), (2000, 5001)),
        (646, 229, 83, 27, 10, 3, 2),
    ),
    "goods_listed": (((200, 600), (600, 1500), (1500, 4001)), (60, 30, 10)),
    SERVICES: (((1, 10), (10, 40), (40, 150), (150, 600)), (50, 33, 14, 3)),
    TRANSPORT: (((1, 10), (10, 40), (40, 200), (200, 800)), (50, 33, 14, 3)),
    PROPERTY: (((1, 10), (10, 40), (40, 120), (120, 300)), (45, 38, 14, 3)),
}
_BANDS_CW = {k: tuple(accumulate(w)) for k, (_, w) in _BANDS.items()}
#: Occasional goods sellers: 1..29 sales, small counts more likely.
_OCCASIONAL = tuple(range(1, 30))
_OCCASIONAL_CW = tuple(accumulate((30 - k) ** 2 for k in _OCCASIONAL))

#: Seasonality (month factors) per activity; weekends count less for services.
_SEASON: dict[str, tuple[float, ...]] = {
    GOODS: (0.9, 0.8, 0.9, 0.9, 0.95, 0.95, 0.9, 0.9, 1.0, 1.05, 1.4, 1.6),
    SERVICES: (1.0,) * 12,
    TRANSPORT: (0.7, 0.7, 0.8, 0.9, 1.1, 1.4, 1.7, 1.7, 1.1, 0.9, 0.7, 0.9),
    PROPERTY: (0.6, 0.6, 0.7, 0.9, 1.0, 1.5, 2.0, 2.0, 1.2, 0.8, 0.6, 0.9),
}
#: Payments per UTC hour (European daytime, a fair share late in the evening UTC).
_HOURS = tuple(range(24))
_HOURS_CW = tuple(
    accumulate(
        (
            1.0,
            0.6,
            0.4,
            0.3,
            0.3,
            0.5,
            1.0,
            2.0,
            3.0,
            4.0,
            4.5,
            5.0,
            5.0,
            5.0,
            5.0,
            5.0,
            5.5,
            6.0,
            6.5,
            6.5,
            6.0,
            5.0,
            3.5,
            2.0,
        )
    )
)
_OUT_OF_YEAR_DAYS = 5  # days before / after the year with some payments (each side ~1%)
_EDGE_P = 0.005  # share of payments put just around a quarter boundary (UTC)
_REFUND_P = 0.03


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _target_closed(day: dt.date) -> bool:
    """ECB reference rates are not published on weekends and TARGET closing days."""
    if day.weekday() >= 5:
        return True
    if (day.month, day.day) in ((1, 1), (5, 1), (12, 25), (12, 26)):
        return True
    easter = _easter(day.year)
    return day in (easter - dt.timedelta(days=2), easter + dt.timedelta(days=1))


# ----------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------


class _Generator:
    def __init__(self, seed: int, year: int, with_other_property_type: bool) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.year = year
        self.other_type = with_other_property_type
        self.base = dt.date(year - 1, 12, 1)  # first FX date, day index 0
        self.last = dt.date(year + 1, 3, 31)  # last FX date and latest refund
        ndays = (self.last - self.base).days + 1
        self.day_text = [(self.base + dt.timedelta(days=i)).isoformat() + " " for i in range(ndays)]
        self.time_text = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        self.max_sec = ndays * 86400 - 1
        first = self._index(dt.date(year, 1, 1))
        last = self._index(dt.date(year, 12, 31))
        lo, hi = first - _OUT_OF_YEAR_DAYS, last + _OUT_OF_YEAR_DAYS
        self.paid_days = tuple(range(lo, hi + 1))
        self.year_days = tuple(range(first, last + 1))
        self.day_cw: dict[str, tuple[float, ...]] = {}
        for act, season in _SEASON.items():
            weights = []
            for i in self.year_days:
                day = self.base + dt.timedelta(days=i)
                w = season[day.month - 1]
                if act == SERVICES and day.weekday() >= 5:
                    w *= 0.7
                weights.append(w)
            side = 0.01 * sum(weights) / _OUT_OF_YEAR_DAYS
            self.day_cw[act] = tuple(accumulate([side] * _OUT_OF_YEAR_DAYS + weights + [side] * _OUT_OF_YEAR_DAYS))
        self.year_cw = tuple(accumulate(1.0 for _ in self.year_days))
        # just before / after quarter ends in UTC (local time is already the next quarter)
        edges = []
        for day in (
            dt.date(year - 1, 12, 31),
            dt.date(year, 3, 31),
            dt.date(year, 6, 30),
            dt.date(year, 9, 30),
            dt.date(year, 12, 31),
        ):
            i = self._index(day)
            edges += [(i * 86400 + 21 * 3600, i * 86400 + 86400)] * 4  # 21:00-23:59:59
            edges.append(((i + 1) * 86400, (i + 1) * 86400 + 2 * 3600))  # 00:00-01:59:59 next
        self.edges = tuple(edges)
        self.n_txn = 0
        self.n_refund = 0
        self.n_listing = 0

    def _index(self, day: dt.date) -> int:
        return (day - self.base).days

    def text(self, sec: int) -> str:
        d, s = divmod(sec, 86400)
        return self.day_text[d] + self.time_text[s]

    def band(self, kind: str) -> int:
        bands, _ = _BANDS[kind]
        lo, hi = self.rng.choices(bands, cum_weights=_BANDS_CW[kind])[0]
        return self.rng.randrange(lo, hi)

    def seller(self, index: int, sink: Sink) -> None:
        rng = self.rng
        random_ = rng.random
        sid = f"S{index:07d}"
        entity = random_() < 0.15
        country = rng.choices(RESIDENCES, cum_weights=RESIDENCE_CW)[0]
        cc = country.code
        governmental = entity and random_() < 0.02
        listed = entity and not governmental and random_() < 0.012

        # what the seller does
        r = random_()
        if entity:
            primary = PROPERTY if r < 0.10 else SERVICES if r < 0.15 else TRANSPORT if r < 0.21 else GOODS
        else:
            primary = PROPERTY if r < 0.045 else SERVICES if r < 0.095 else TRANSPORT if r < 0.12 else GOODS
        if governmental:
            primary = PROPERTY if r < 0.5 else TRANSPORT
        activities = [primary]
        r = random_()
        if primary != GOODS:
            if r < 0.25:
                activities.append(GOODS)
        elif r < 0.02:
            activities.append(SERVICES)
        elif r < 0.03:
            activities.append(TRANSPORT)
        elif r < 0.035:
            activities.append(PROPERTY)

        # identity
        first = last = legal = birth_text = birth_city = birth_country = brn = None
        birth = None
        name_key = rng.choice(country.names)
        if entity:
            city = rng.choice(country.cities)
            if governmental:
                legal = f"{city} {rng.choice(_GOV_SUFFIX)}"
            else:
                word = rng.choice(_ENTITY_WORDS)
                suffix = rng.choice(_ENTITY_SUFFIX[primary])
                form = "SE" if listed and random_() < 0.5 else rng.choice(country.forms)
                legal = f"{word} {suffix} {'Group ' if listed else ''}{form}"
            holder_name = legal
        else:
            firsts, lasts = NAMES[name_key]
            first, last = rng.choice(firsts), rng.choice(lasts)
            year_ = 1940 + min(rng.randrange(66), rng.randrange(66)) if random_() < 0.3 else rng.randint(1958, 1998)
            birth = dt.date(year_, 1, 1) + dt.timedelta(days=rng.randrange(365))
            birth_text = birth.isoformat()
            r = random_()
            if r < 0.85 or not country.weight:
                birth_country = cc
            elif r < 0.95:
                birth_country = rng.choice(EU)
            else:
                birth_country = rng.choice(BIRTH_ABROAD)
            cities = COUNTRIES[birth_country].cities if birth_country in COUNTRIES else BIRTH_ONLY[birth_country]
            birth_city = rng.choice(cities)
            holder_name = f"{first} {last}"

        # TINs: one from the residence country; some none, some a second one from a member state
        tins: list[tuple[str, str, str]] = []
        r = random_()
        has_tin = r >= (0.015 if entity else 0.06)
        if has_tin:
            tins.append((sid, identifiers.tin(rng, cc, entity, birth), cc))
            if random_() < 0.02:
                other = rng.choice([c for c in EU if c != cc])
                tins.append((sid, identifiers.tin(rng, other, entity, birth), other))
        elif not entity and birth_city is None:  # birth place is mandatory without a TIN
            birth_country, birth_city = cc, rng.choice(country.cities)
        if not entity and has_tin and random_() < 0.03:
            birth_city = birth_country = None  # place of birth not collected
        if entity:
            vat_id = identifiers.vat(rng, cc, tins[0][1] if tins else None) if random_() < 0.75 else None
            brn = identifiers.brn(rng, cc, tins[0][1] if tins else None) if random_() < 0.92 else None
        else:
            vat_id = identifiers.vat(rng, cc, None) if random_() < 0.04 else None

        city = rng.choice(country.cities) if not entity else city
        street = rng.choice(country.streets)
        building = str(rng.randint(1, 180)) + (rng.choice("abAB") if random_() < 0.08 else "")
        post_code = identifiers.fill(rng, country.post_code)
        sink.rows["sellers"].append(
            (
                sid,
                "entity" if entity else "individual",
                first,
                last,
                legal,
                birth_text,
                birth_city,
                birth_country,
                cc,
                street,
                building,
                post_code,
                city,
                cc,
                vat_id,
                brn,
                governmental,
                listed,
                seller_language(sid, cc),
            )
        )
        sink.rows["seller_tins"].extend(tins)

        # financial accounts
        r = random_()
        n_accounts = 0 if r < 0.03 else 2 if r < 0.05 else 1
        for k in range(n_accounts):
            acc_cc = cc if k == 0 and random_() < 0.9 else "LT"
            r = random_()
            if r < 0.85:
                holder = holder_name
            elif r < 0.93:
                if entity:
                    word, suffix = rng.choice(_ENTITY_WORDS), rng.choice(_ENTITY_SUFFIX[primary])
                    holder = f"{word} {suffix} {rng.choice(country.forms)}"
                else:
                    other = rng.choice(NAMES[name_key][0])
                    holder = f"{other} {last}" if random_() < 0.5 else f"{first} and {other} {last}"
            else:
                holder = None
            sink.rows["seller_financial_accounts"].append((sid, identifiers.iban(rng, acc_cc), holder))

        # permanent establishments in other member states
        if entity and random_() < 0.06:
            for pe in sorted(set(rng.sample([c for c in EU if c != cc], rng.randint(1, 2)))):
                sink.rows["seller_permanent_establishments"].append((sid, pe))

        # money: currency, fees and taxes
        currency = country.currency
        second, second_pct = None, 0
        if random_() < 0.02:
            second = "EUR" if currency != "EUR" else rng.choice(("USD", "GBP", "PLN", "CHF"))
            second_pct = rng.randint(15, 50)
        fee_pm = rng.randint(50, 150)  # fee in per mille of the gross amount
        vat_pct = country.vat_rate if random_() < 0.2 else 0

        # transactions: (sec, activity, listing, currency, amount, fee, tax, rented_days)
        txns: list[tuple] = []
        refunds_ok = True
        for act in activities:
            if act == GOODS:
                only_goods = len(activities) == 1
                r = random_()
                if listed:
                    self.stream(
                        txns, GOODS, self.band("goods_listed"), 4000, currency, second, second_pct, fee_pm, vat_pct
                    )
                elif only_goods and r < 0.02 and not entity:
                    refunds_ok = False
                    self.edge_stream(txns, currency, fee_pm)
                elif not only_goods or r < (0.35 if entity else 0.76):
                    n = rng.choices(_OCCASIONAL, cum_weights=_OCCASIONAL_CW)[0]
                    price = rng.randrange(500, 6000)
                    self.stream(txns, GOODS, n, price, currency, second, second_pct, fee_pm, vat_pct)
                elif r < (0.75 if entity else 0.89):
                    price = rng.randrange(500, 8000)
                    self.stream(
                        txns, GOODS, self.band("goods_pro"), price, currency, second, second_pct, fee_pm, vat_pct
                    )
                else:  # few but valuable sales
                    price = rng.randrange(8000, 150000)
                    self.stream(txns, GOODS, rng.randrange(3, 30), price, currency, second, second_pct, fee_pm, vat_pct)
            elif act == SERVICES:
                price = rng.randrange(2000, 25000)
                self.stream(txns, SERVICES, self.band(SERVICES), price, currency, second, second_pct, fee_pm, vat_pct)
            elif act == TRANSPORT:
                price = rng.randrange(3000, 40000)
                self.stream(txns, TRANSPORT, self.band(TRANSPORT), price, currency, second, second_pct, fee_pm, vat_pct)
            else:
                self.listings(sink, txns, sid, cc, entity, governmental, currency, second, second_pct, fee_pm, vat_pct)

        txns.sort(key=itemgetter(0))
        out = sink.rows["transactions"]
        refunds = sink.rows["refunds"]
        text = self.text
        n = self.n_txn
        for sec, act, listing, cur, amount, fee, tax, days in txns:
            n += 1
            tid = f"T{n:010d}"
            out.append((tid, sid, act, listing, text(sec), cur, amount, fee, tax, days))
            if refunds_ok and random_() < _REFUND_P:
                self.refund(refunds, tid, sec, amount, fee, tax)
        self.n_txn = n
        sink.pending += len(txns) + 4

    def stream(
        self,
        out: list,
        act: str,
        n: int,
        price: int,
        currency: str,
        second: str | None,
        second_pct: int,
        fee_pm: int,
        vat_pct: int,
    ) -> None:
        """n payments of one activity; price in EUR cents (per sale, per day of rental)."""
        rng = self.rng
        randrange, random_ = rng.randrange, rng.random
        days = rng.choices(self.paid_days, cum_weights=self.day_cw[act], k=n)
        hours = rng.choices(_HOURS, cum_weights=_HOURS_CW, k=n)
        edges = self.edges
        for d, h in zip(days, hours, strict=True):
            sec = d * 86400 + h * 3600 + randrange(3600)
            if random_() < _EDGE_P:
                lo, hi = edges[randrange(len(edges))]
                sec = randrange(lo, hi)
            cur = second if second and randrange(100) < second_pct else currency
            gross = price * randrange(60, 141) // 100 * LEVEL[cur] // 10000 + 100
            fee = gross * fee_pm // 1000
            tax = fee * vat_pct // 100
            out.append((sec, act, None, cur, gross - fee - tax, fee, tax, None))

    def edge_stream(self, out: list, currency: str, fee_pm: int) -> None:
        """28-31 sales inside the year, totalling close to (or exactly) EUR 2,000 net."""
        rng = self.rng
        n = rng.randint(28, 31)
        r = rng.random()
        target = 200000 if r < 0.3 else 200001 if r < 0.45 else 199999 if r < 0.55 else rng.randrange(195000, 205001)
        target = target * LEVEL[currency] // 10000
        cuts = sorted(rng.sample(range(1, target), n - 1))
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, target], strict=True)]
        days = rng.choices(self.year_days, cum_weights=self.year_cw, k=n)
        for d, amount in zip(days, parts, strict=True):
            sec = d * 86400 + rng.randrange(6 * 3600, 20 * 3600)
            out.append((sec, GOODS, None, currency, amount, amount * fee_pm // 1000, 0, None))

    def listings(
        self,
        sink: Sink,
        out: list,
        sid: str,
        cc: str,
        entity: bool,
        governmental: bool,
        currency: str,
        second: str | None,
        second_pct: int,
        fee_pm: int,
        vat_pct: int,
    ) -> None:
        """Property listings of a seller and their bookings."""
        rng = self.rng
        random_ = rng.random
        hotel = entity and not governmental and random_() < 0.04
        if hotel:
            n_listings = 1
        else:
            r = random_()
            n_listings = 1 if r < (0.5 if entity else 0.72) else rng.randint(2, 3) if r < 0.93 else rng.randint(4, 12)
        resident_eu = cc in EU_MEMBER_STATES
        for _ in range(n_listings):
            self.n_listing += 1
            lid = f"L{self.n_listing:07d}"
            r = random_()
            if resident_eu:
                where = cc if r < 0.78 else None if r < 0.96 else rng.choice(LISTING_NON_EU)
            else:
                where = cc if r < 0.45 else None
            if where is None:
                where = rng.choices(HOLIDAY_EU, cum_weights=HOLIDAY_EU_CW)[0]
            place = COUNTRIES[where]
            ptype = "DPI902" if hotel else rng.choices(_PROPERTY_TYPES, cum_weights=_PROPERTY_CW)[0]
            other = rng.choice(_OTHER_PROPERTY) if ptype == "DPI910" else None
            land = identifiers.fill(rng, LAND_REGISTRY.get(where, "LR-########")) if random_() < 0.4 else None
            row = (
                lid,
                sid,
                rng.choice(place.streets),
                str(rng.randint(1, 240)),
                identifiers.fill(rng, place.post_code),
                rng.choice(place.cities),
                where,
                land,
                ptype,
            )
            sink.rows["property_listings"].append((*row, other) if self.other_type else row)

            n = rng.randint(1500, 3000) if hotel else self.band(PROPERTY)
            max_days = 4 if hotel else 14
            nightly = rng.randrange(6000, 20000) if hotel else rng.randrange(3500, 25000)
            randrange, rand = rng.randrange, rng.random
            edges = self.edges
            days = rng.choices(self.paid_days, cum_weights=self.day_cw[PROPERTY], k=n)
            hours = rng.choices(_HOURS, cum_weights=_HOURS_CW, k=n)
            for d, h in zip(days, hours, strict=True):
                sec = d * 86400 + h * 3600 + randrange(3600)
                if rand() < _EDGE_P:
                    lo, hi = edges[randrange(len(edges))]
                    sec = randrange(lo, hi)
                cur = second if second and randrange(100) < second_pct else currency
                nights = randrange(1, max_days + 1)
                gross = nightly * nights * randrange(85, 116) // 100 * LEVEL[cur] // 10000 + 100
                fee = gross * fee_pm // 1000
                tax = fee * vat_pct // 100
                out.append((sec, PROPERTY, lid, cur, gross - fee - tax, fee, tax, nights))

    def refund(self, out: list, tid: str, sec: int, amount: int, fee: int, tax: int) -> None:
        """A full refund, a partial one, or two partial ones; never more than the payment."""
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            parts = [(amount, fee, tax)]
        elif r < 0.9:
            k = rng.randint(5, 95)
            parts = [(amount * k // 100, fee * k // 100, tax * k // 100)]
        else:
            k1 = rng.randint(10, 60)
            k2 = rng.randint(10, 100 - k1)
            parts = [(amount * k // 100, fee * k // 100, tax * k // 100) for k in (k1, k2)]
        at = sec
        for a, f, t in parts:
            if a <= 0:
                continue
            if rng.random() < 0.15:
                at += rng.randrange(30 * 86400, 95 * 86400)
            else:
                at += rng.randrange(3600, 40 * 86400)
            at = min(at, self.max_sec)
            self.n_refund += 1
            out.append((f"R{self.n_refund:09d}", tid, self.text(at), a, f, t))

    def fx_rates(self) -> list[tuple[str, str, str]]:
        """Daily ECB-style rates (TARGET business days) as exact decimal text."""
        rng = random.Random(f"{self.seed}/fx")
        days = [self.base + dt.timedelta(days=i) for i in range((self.last - self.base).days + 1)]
        days = [d for d in days if not _target_closed(d)]
        rows = []
        for cur, (level, decimals, step) in FX.items():
            v = level + rng.randint(-20, 20) * step
            for day in days:
                v += rng.randint(-step, step) + (level - v) // 25
                v = max(v, level // 2)
                whole, frac = divmod(v, 10**decimals)
                rows.append((cur, day.isoformat(), f"{whole}.{frac:0{decimals}d}"))
        return rows


@dataclass(frozen=True, slots=True, eq=False)
class DemoResult(Mapping[str, int]):
    """What :func:`generate_demo` wrote: the rows per table (the result reads as that mapping,
    ``result["transactions"]``), and the sellers made bad on purpose, ``seller_id -> kind`` of
    :data:`dac7_demo.defects.BAD_KINDS` (the ground truth a run's quarantine must match; empty
    without ``bad_share``). Two results are equal when their row counts are."""

    counts: Mapping[str, int]
    bad_sellers: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, table: str) -> int:
        return self.counts[table]

    def __iter__(self) -> Iterator[str]:
        return iter(self.counts)

    def __len__(self) -> int:
        return len(self.counts)


def generate_demo(
    url: str, *, sellers: int, seed: int, year: int, replace: bool = False, bad_share: float = 0.0
) -> DemoResult:
    """Fill the source-contract tables at ``url`` with a synthetic marketplace.

    Returns the number of rows written per table, and the sellers made bad on purpose (see
    :class:`DemoResult`). The same ``(sellers, seed, year, bad_share)`` gives the same rows on
    every database. Raises :class:`SourceError` when the tables already hold rows and
    ``replace`` is false; with ``replace=True`` the contract tables are dropped first.

    Shape: about 85% individuals and 15% entities (a few governmental or listed), resident in
    all 27 member states (weighted) and about 5% outside the EU (US, GB, CH, NO, UA); most sell
    goods below the de minimis (fewer than 30 sales, at most EUR 2,000), with a heavy-tailed set
    of professional sellers (up to some thousands of sales), about 5% renting out property
    (listings in and outside the EU, including hotel-like entities above 2,000 rentals), about
    5% personal services and about 3% transport rental, some mixed. Payments are in the
    residence currency (PLN, CZK, SEK, HUF, RON, DKK, USD, GBP, CHF, NOK or EUR), spread over the
    year with a few days before and after it and some late in the evening UTC on quarter ends;
    about 3% of payments are refunded (fully or partly, some after the year end). FX rates are
    daily ECB-style rates from 1 December of the previous year to 31 March of the next one.

    ``bad_share`` (0 to 1, e.g. 0.01) makes that share of the sellers bad on purpose, each with
    one defect of :data:`dac7_demo.defects.BAD_KINDS` that the pipeline must quarantine (see
    :class:`dac7_demo.defects.BadSellers` for who is chosen). The bad sellers come from a random
    stream of their own: every other seller's rows are the same as without them, and
    ``bad_share=0`` writes exactly the data it always did.
    """
    if isinstance(sellers, bool) or not isinstance(sellers, int) or sellers < 0:
        raise ValueError(f"sellers must be a non-negative integer, not {sellers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    if isinstance(year, bool) or not isinstance(year, int) or not 1971 <= year <= 2036:
        # TIMESTAMP columns on MariaDB/MySQL only hold 1970-2038
        raise ValueError(f"year must be between 1971 and 2036, not {year!r}")
    if isinstance(bad_share, bool) or not isinstance(bad_share, (int, float)) or not 0 <= bad_share <= 1:
        raise ValueError(f"bad_share must be a fraction between 0 and 1, not {bad_share!r}")

    engine = make_engine(url)
    try:
        other_type = prepare_schema(engine, replace)
        columns = dict(COLUMNS)
        if not other_type:
            columns["property_listings"] = CONTRACT["property_listings"]
        gen = _Generator(seed, year, other_type)
        bad = BadSellers(seed, year, sellers, bad_share) if bad_share else None
        with engine.connect() as conn:
            start_load(conn)
            sink = Sink(conn, columns)
            sink.rows["fx_rates"].extend(gen.fx_rates())
            for start in range(1, sellers + 1, BATCH_SELLERS):
                for i in range(start, min(start + BATCH_SELLERS, sellers + 1)):
                    if bad is None:
                        gen.seller(i, sink)
                    else:
                        marks = {table: len(rows) for table, rows in sink.rows.items()}
                        gen.seller(i, sink)
                        bad.after_seller(i, sink, marks)
                    if sink.pending >= FLUSH_ROWS:
                        sink.flush()
                sink.flush()
                conn.commit()
            sink.flush()
            conn.commit()
        return DemoResult(dict(sink.counts), dict(bad.made) if bad else {})
    finally:
        engine.dispose()
