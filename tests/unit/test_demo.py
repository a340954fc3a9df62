"""The synthetic marketplace (dac7_demo): deterministic, in the contract, realistically shaped."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter, defaultdict
from contextlib import closing
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from stdnum import iban

from dac7_demo import BAD_KINDS, DEMO_DEFAULTS, DemoResult, generate_demo, generator
from reporting.countries import EU_MEMBER_STATES, minor_unit_exponent
from reporting.errors import SourceError
from reporting.source import CONTRACT, create_schema, make_engine

YEAR = 2025
ACTIVITIES = {"sale_of_goods", "personal_services", "transportation_rental", "immovable_property"}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
TABLES = (*CONTRACT,)

# TINs whose format python-stdnum can check, per (issuing country, seller type)
TIN_CHECKS = {
    ("DE", "individual"): "de.idnr",
    ("HR", "individual"): "hr.oib",
    ("HR", "entity"): "hr.oib",
    ("ES", "individual"): "es.dni",
    ("ES", "entity"): "es.cif",
    ("PL", "individual"): "pl.pesel",
    ("PL", "entity"): "pl.nip",
    ("NL", "individual"): "nl.bsn",
    ("NL", "entity"): "nl.bsn",
    ("PT", "individual"): "pt.nif",
    ("PT", "entity"): "pt.nif",
    ("FR", "individual"): "fr.nif",
    ("FR", "entity"): "fr.siren",
    ("IT", "individual"): "it.codicefiscale",
    ("IT", "entity"): "it.iva",
    ("BE", "individual"): "be.nn",
    ("BE", "entity"): "be.vat",
    ("EE", "individual"): "ee.ik",
    ("EE", "entity"): "ee.registrikood",
    ("LT", "individual"): "lt.asmens",
    ("FI", "individual"): "fi.hetu",
    ("FI", "entity"): "fi.ytunnus",
    ("SE", "individual"): "se.personnummer",
    ("SE", "entity"): "se.orgnr",
    ("DK", "individual"): "dk.cpr",
    ("DK", "entity"): "dk.cvr",
    ("BG", "individual"): "bg.egn",
    ("BG", "entity"): "bg.vat",
    ("CZ", "individual"): "cz.rc",
    ("CZ", "entity"): "cz.dic",
    ("SK", "individual"): "sk.rc",
    ("RO", "individual"): "ro.cnp",
    ("RO", "entity"): "ro.cui",
    ("LV", "individual"): "lv.pvn",
    ("GR", "individual"): "gr.vat",
    ("GR", "entity"): "gr.vat",
    ("SI", "individual"): "si.ddv",
    ("SI", "entity"): "si.ddv",
    ("IE", "individual"): "ie.pps",
    ("IE", "entity"): "ie.pps",
    ("CY", "individual"): "cy.vat",
    ("CY", "entity"): "cy.vat",
    ("GB", "individual"): "gb.utr",
    ("GB", "entity"): "gb.utr",
    ("CH", "individual"): "ch.ssn",
    ("CH", "entity"): "ch.uid",
    ("NO", "individual"): "no.fodselsnummer",
    ("NO", "entity"): "no.orgnr",
    ("US", "individual"): "us.ssn",
    ("US", "entity"): "us.ein",
}


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every contract table, rows sorted, read without any type conversion."""
    with closing(sqlite3.connect(path)) as conn:
        out = {}
        for table in TABLES:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            out[table] = sorted(rows, key=repr)
        return out


def rows(path: Path, sql: str) -> list[sqlite3.Row]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """The default demo marketplace (2,000 sellers), generated once for the module."""
    path = tmp_path_factory.mktemp("demo") / "market.db"
    counts = generate_demo(f"sqlite:///{path}", **DEMO_DEFAULTS)
    return path, counts


@pytest.fixture(scope="module")
def db(market: tuple[Path, dict[str, int]]) -> dict[str, list[sqlite3.Row]]:
    path, _ = market
    return {t: rows(path, f"SELECT * FROM {t}") for t in TABLES}


# -- determinism ---------------------------------------------------------------------------------


def test_same_arguments_give_identical_tables_whatever_the_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    counts_a = generate_demo(f"sqlite:///{a}", sellers=400, seed=11, year=YEAR)
    monkeypatch.setattr(generator, "BATCH_SELLERS", 37)
    monkeypatch.setattr(generator, "FLUSH_ROWS", 500)
    counts_b = generate_demo(f"sqlite:///{b}", sellers=400, seed=11, year=YEAR)
    assert counts_a == counts_b
    assert dump(a) == dump(b)


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    generate_demo(f"sqlite:///{a}", sellers=200, seed=1, year=YEAR)
    generate_demo(f"sqlite:///{b}", sellers=200, seed=2, year=YEAR)
    da, db_ = dump(a), dump(b)
    assert da["fx_rates"] != db_["fx_rates"]
    assert da["sellers"] != db_["sellers"]
    assert da["transactions"] != db_["transactions"]


def test_counts_are_the_rows_written(market: tuple[Path, dict[str, int]]) -> None:
    path, counts = market
    assert set(counts) == set(CONTRACT)
    for table in CONTRACT:
        assert counts[table] == rows(path, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"], table
    assert counts["sellers"] == DEMO_DEFAULTS["sellers"]
    assert 15 <= counts["transactions"] / counts["sellers"] <= 60


# -- existing tables -----------------------------------------------------------------------------


def test_a_filled_database_is_not_touched_without_replace(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    first = generate_demo(url, sellers=50, seed=3, year=YEAR)
    before = dump(tmp_path / "m.db")
    with pytest.raises(SourceError, match=r"already holds rows.*replace=True"):
        generate_demo(url, sellers=60, seed=4, year=YEAR)
    assert dump(tmp_path / "m.db") == before
    again = generate_demo(url, sellers=50, seed=3, year=YEAR, replace=True)
    assert again == first
    assert dump(tmp_path / "m.db") == before


def test_empty_contract_tables_are_filled_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    try:
        create_schema(engine)
    finally:
        engine.dispose()
    counts = generate_demo(url, sellers=30, seed=3, year=YEAR)
    assert counts["sellers"] == 30


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sellers": -1, "seed": 1, "year": YEAR},
        {"sellers": 10, "seed": 1, "year": 2040},
        {"sellers": 10, "seed": "x", "year": YEAR},
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_demo(f"sqlite:///{tmp_path / 'x.db'}", **kwargs)


# -- contract shape ------------------------------------------------------------------------------


def test_transactions_follow_the_contract(db: dict[str, list[sqlite3.Row]]) -> None:
    listings = {r["listing_id"]: r["seller_id"] for r in db["property_listings"]}
    sellers = {r["seller_id"] for r in db["sellers"]}
    ids = [r["transaction_id"] for r in db["transactions"]]
    assert len(ids) == len(set(ids))
    for t in db["transactions"]:
        assert t["activity"] in ACTIVITIES
        assert t["seller_id"] in sellers
        assert TIMESTAMP.match(t["paid_at"])
        assert t["amount_minor"] > 0 and t["fee_minor"] >= 0 and t["tax_minor"] >= 0
        assert all(type(t[c]) is int for c in ("amount_minor", "fee_minor", "tax_minor"))
        gross = t["amount_minor"] + t["fee_minor"] + t["tax_minor"]
        assert t["fee_minor"] * 100 <= 16 * gross
        minor_unit_exponent(t["currency"])  # an ISO 4217 payment currency
        if t["activity"] == "immovable_property":
            assert listings[t["listing_id"]] == t["seller_id"]
            assert 1 <= t["rented_days"] <= 14
        else:
            assert t["listing_id"] is None and t["rented_days"] is None


def test_payments_spread_over_the_year_and_its_edges(db: dict[str, list[sqlite3.Row]]) -> None:
    paid = [t["paid_at"] for t in db["transactions"]]
    assert min(paid) >= f"{YEAR - 1}-12-27" and max(paid) < f"{YEAR + 1}-01-06"
    before = sum(p < f"{YEAR}-01-01" for p in paid)
    after = sum(p >= f"{YEAR + 1}-01-01" for p in paid)
    assert 0.002 * len(paid) < before < 0.03 * len(paid)
    assert 0.002 * len(paid) < after < 0.03 * len(paid)
    months = Counter(p[:7] for p in paid if p[:4] == str(YEAR))
    assert len(months) == 12 and min(months.values()) > 0.03 * len(paid)
    for quarter_end in ("03-31", "06-30", "09-30", "12-31"):
        late = [p for p in paid if p.startswith(f"{YEAR}-{quarter_end} 2")]
        assert any(p[11:16] >= "22:00" for p in late), quarter_end


def test_refunds_never_exceed_their_transaction(db: dict[str, list[sqlite3.Row]]) -> None:
    txns = {t["transaction_id"]: t for t in db["transactions"]}
    refunded: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    full = partial = after_year = 0
    for r in db["refunds"]:
        t = txns[r["transaction_id"]]
        assert TIMESTAMP.match(r["refunded_at"])
        assert r["refunded_at"] > t["paid_at"]
        assert r["refunded_at"] <= f"{YEAR + 1}-03-31 23:59:59"
        assert r["amount_minor"] > 0 and r["fee_minor"] >= 0 and r["tax_minor"] >= 0
        total = refunded[r["transaction_id"]]
        total[0] += r["amount_minor"]
        total[1] += r["fee_minor"]
        total[2] += r["tax_minor"]
        if (r["amount_minor"], r["fee_minor"], r["tax_minor"]) == (t["amount_minor"], t["fee_minor"], t["tax_minor"]):
            full += 1
        else:
            partial += 1
        after_year += r["refunded_at"] >= f"{YEAR + 1}-01-01"
    for tid, (amount, fee, tax) in refunded.items():
        t = txns[tid]
        assert amount <= t["amount_minor"] and fee <= t["fee_minor"] and tax <= t["tax_minor"], tid
    assert 0.015 < len(refunded) / len(txns) < 0.05
    assert full > 0 and partial > 0 and after_year > 0
    assert any(len([r for r in db["refunds"] if r["transaction_id"] == tid]) > 1 for tid in list(refunded)[:500])


def test_fx_rates_cover_every_currency_used(db: dict[str, list[sqlite3.Row]]) -> None:
    rates: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in db["fx_rates"]:
        assert isinstance(r["units_per_eur"], str)  # exact decimal text, never a float
        decimals = 2 if r["currency"] == "HUF" else 4
        assert re.fullmatch(rf"\d+\.\d{{{decimals}}}", r["units_per_eur"]), r["currency"]
        assert date.fromisoformat(r["rate_date"]).weekday() < 5
        rates[r["currency"]].append((r["rate_date"], r["units_per_eur"]))
    used = {t["currency"] for t in db["transactions"]} - {"EUR"}
    assert used >= {"PLN", "CZK", "SEK", "HUF", "RON", "DKK", "USD", "GBP", "CHF", "NOK"}
    for cur in used:
        dates = [d for d, _ in rates[cur]]
        assert min(dates) <= f"{YEAR - 1}-12-03" and max(dates) >= f"{YEAR + 1}-03-27", cur
        assert any(d <= f"{YEAR}-12-31" for d in dates), cur
        assert f"{YEAR}-12-25" not in dates and f"{YEAR}-01-01" not in dates  # TARGET holidays
    levels = {
        "PLN": 4.30,
        "CZK": 25.0,
        "SEK": 11.4,
        "HUF": 395,
        "RON": 4.97,
        "DKK": 7.46,
        "USD": 1.08,
        "GBP": 0.86,
        "CHF": 0.95,
        "NOK": 11.6,
    }
    for cur, level in levels.items():
        values = [Decimal(v) for _, v in rates[cur]]
        assert Decimal(str(level)) * Decimal("0.85") < min(values), cur
        assert max(values) < Decimal(str(level)) * Decimal("1.15"), cur
    dkk = [Decimal(v) for _, v in rates["DKK"]]
    assert max(dkk) - min(dkk) < Decimal("0.05")


def test_sellers_are_spread_over_the_member_states(db: dict[str, list[sqlite3.Row]]) -> None:
    sellers = db["sellers"]
    residence = Counter(s["residence_country"] for s in sellers)
    assert set(residence) >= EU_MEMBER_STATES
    assert all(residence[c] >= 3 for c in EU_MEMBER_STATES)
    non_eu = {c: n for c, n in residence.items() if c not in EU_MEMBER_STATES}
    assert set(non_eu) <= {"US", "GB", "CH", "NO", "UA"} and len(non_eu) >= 4
    assert 0.02 < sum(non_eu.values()) / len(sellers) < 0.09
    for s in sellers:
        assert s["address_country"] == s["residence_country"]
        assert s["address_street"] and s["address_building"] and s["address_post_code"] and s["address_city"]
        assert s["is_governmental"] in (0, 1) and s["is_listed"] in (0, 1)
        assert re.fullmatch(r"S\d{7}", s["seller_id"])


def test_individuals_and_entities(db: dict[str, list[sqlite3.Row]]) -> None:
    types = Counter(s["seller_type"] for s in db["sellers"])
    assert set(types) == {"individual", "entity"}
    assert 0.78 < types["individual"] / len(db["sellers"]) < 0.92
    for s in db["sellers"]:
        if s["seller_type"] == "individual":
            assert s["first_name"] and s["last_name"] and s["legal_name"] is None
            assert "1940-01-01" <= s["birth_date"] <= "2005-12-31"
            assert (s["birth_city"] is None) == (s["birth_country"] is None)
            assert not s["is_governmental"] and not s["is_listed"]
        else:
            assert s["legal_name"] and s["first_name"] is None and s["birth_date"] is None
    entities = [s for s in db["sellers"] if s["seller_type"] == "entity"]
    assert sum(s["vat_id"] is not None for s in entities) > 0.6 * len(entities)
    assert sum(s["business_registration_number"] is not None for s in entities) > 0.8 * len(entities)
    assert 1 <= sum(s["is_governmental"] for s in entities) <= 0.06 * len(entities)
    assert 1 <= sum(s["is_listed"] for s in entities) <= 0.06 * len(entities)


def test_tins_accounts_and_establishments(db: dict[str, list[sqlite3.Row]]) -> None:
    import importlib

    sellers = {s["seller_id"]: s for s in db["sellers"]}
    tins: dict[str, list[sqlite3.Row]] = defaultdict(list)
    for t in db["seller_tins"]:
        tins[t["seller_id"]].append(t)
    without = [sid for sid in sellers if sid not in tins]
    assert 0.02 < len(without) / len(sellers) < 0.09
    for sid in without:  # the place of birth is mandatory when the TIN is unknown
        if sellers[sid]["seller_type"] == "individual":
            assert sellers[sid]["birth_city"] and sellers[sid]["birth_country"]
    two = [ts for ts in tins.values() if len(ts) > 1]
    assert 0.005 < len(two) / len(sellers) < 0.04
    checked = 0
    for sid, ts in tins.items():
        s = sellers[sid]
        assert ts[0]["issued_by"] == s["residence_country"]
        for t in ts[1:]:
            assert t["issued_by"] in EU_MEMBER_STATES and t["issued_by"] != s["residence_country"]
        for t in ts:
            module = TIN_CHECKS.get((t["issued_by"], s["seller_type"]))
            if module:
                assert importlib.import_module(f"stdnum.{module}").is_valid(t["tin"]), (sid, module)
                checked += 1
    assert checked > 0.6 * len(db["seller_tins"])

    from stdnum.eu import vat

    for s in sellers.values():
        if s["vat_id"] and s["residence_country"] in EU_MEMBER_STATES:
            assert vat.is_valid(s["vat_id"]), s["seller_id"]

    accounts = Counter(a["seller_id"] for a in db["seller_financial_accounts"])
    assert 0.9 < len(accounts) / len(sellers) < 0.995
    assert any(n > 1 for n in accounts.values())
    holders = Counter()
    for a in db["seller_financial_accounts"]:
        s = sellers[a["seller_id"]]
        if s["residence_country"] != "US" or a["identifier"][:2] == "LT":
            assert iban.is_valid(a["identifier"]), a["seller_id"]
        name = s["legal_name"] or f"{s['first_name']} {s['last_name']}"
        holders[
            "none" if a["account_holder_name"] is None else "same" if a["account_holder_name"] == name else "other"
        ] += 1
    assert holders["same"] > holders["other"] > 0 and holders["none"] > 0

    for pe in db["seller_permanent_establishments"]:
        s = sellers[pe["seller_id"]]
        assert s["seller_type"] == "entity"
        assert pe["country"] in EU_MEMBER_STATES and pe["country"] != s["residence_country"]
    assert db["seller_permanent_establishments"]


def test_property_listings(db: dict[str, list[sqlite3.Row]]) -> None:
    listings = db["property_listings"]
    assert listings
    for p in listings:
        assert re.fullmatch(r"DPI9(0[1-9]|10)", p["property_type"])
        assert (p["other_property_type"] is not None) == (p["property_type"] == "DPI910")
        assert p["address_street"] and p["address_building"] and p["address_post_code"]
        assert p["address_city"] and p["address_country"]
    countries = Counter(p["address_country"] in EU_MEMBER_STATES for p in listings)
    assert countries[True] > 10 * countries[False] > 0
    with_land = sum(p["land_registration_number"] is not None for p in listings)
    assert 0 < with_land < len(listings)
    used = {t["listing_id"] for t in db["transactions"] if t["listing_id"]}
    assert used == {p["listing_id"] for p in listings}
    renters = {p["seller_id"] for p in listings}
    assert 0.03 < len(renters) / len(db["sellers"]) < 0.09


def test_activity_mix_and_de_minimis(db: dict[str, list[sqlite3.Row]]) -> None:
    # average rate per currency: good enough to tell below from above the de minimis
    sums: dict[str, list[Fraction]] = defaultdict(list)
    for r in db["fx_rates"]:
        sums[r["currency"]].append(Fraction(r["units_per_eur"]))
    rate = {c: sum(v) / len(v) for c, v in sums.items()} | {"EUR": Fraction(1)}
    per_seller: dict[str, dict[str, Any]] = defaultdict(lambda: {"acts": set(), "n": 0, "eur": Fraction(0)})
    acts_of: dict[str, set[str]] = defaultdict(set)
    currencies: dict[str, set[str]] = defaultdict(set)
    for t in db["transactions"]:
        acts_of[t["seller_id"]].add(t["activity"])
        currencies[t["seller_id"]].add(t["currency"])
        if t["paid_at"][:4] != str(YEAR):
            continue
        s = per_seller[t["seller_id"]]
        s["acts"].add(t["activity"])
        s["n"] += 1
        s["eur"] += Fraction(t["amount_minor"], 10 ** minor_unit_exponent(t["currency"])) / rate[t["currency"]]
    n = len(db["sellers"])
    share = {a: sum(a in acts for acts in acts_of.values()) / n for a in ACTIVITIES}
    assert share["sale_of_goods"] > 0.8
    assert 0.03 < share["immovable_property"] < 0.09
    assert 0.03 < share["personal_services"] < 0.10
    assert 0.02 < share["transportation_rental"] < 0.07
    assert 0.01 < sum(len(acts) > 1 for acts in acts_of.values()) / n < 0.15
    assert 0.005 < sum(len(c) > 1 for c in currencies.values()) / n < 0.05

    goods_only = [s for s in per_seller.values() if s["acts"] == {"sale_of_goods"}]
    below = [s for s in goods_only if s["n"] < 30 and s["eur"] <= 2000]
    assert len(below) > 0.6 * len(goods_only)
    assert len(goods_only) - len(below) > 0.1 * len(goods_only)
    near_edge = [s for s in goods_only if 28 <= s["n"] <= 31 and 1900 <= s["eur"] <= 2100]
    assert len(near_edge) >= 5
    assert any(s["eur"] == 2000 for s in goods_only)  # exactly EUR 2,000.00 (EUR sellers)
    counts = sorted(s["n"] for s in per_seller.values())
    assert counts[-1] > 1000  # a long tail of heavy sellers
    assert counts[len(counts) // 2] < 30


# -- bad sellers on purpose (bad_share) ----------------------------------------------------------

BAD_ARGS: dict[str, Any] = {"sellers": 1000, "seed": 11, "year": YEAR}
BAD_SHARE = 0.05

#: Per kind, the sellers whose rows show that defect (read back from the database).
DEFECTS: dict[str, str] = {
    "no_address": "select seller_id from sellers where address_street is null and address_building is null "
    "and address_post_code is null and address_city is null and address_country is null",
    "name_missing": "select seller_id from sellers where (seller_type = 'individual' and last_name is null) "
    "or (seller_type = 'entity' and legal_name is null)",
    "birth_date_out_of_range": "select seller_id from sellers where seller_type = 'individual' "
    f"and (birth_date < '1900-01-01' or birth_date > '{YEAR + 20}-12-31')",
    "bad_residence_country": "select seller_id from sellers where residence_country in ('UK', 'EL')",
    "unknown_currency": "select seller_id from transactions where currency = 'XXQ'",
    "negative_amount": "select seller_id from transactions where amount_minor < 0 or fee_minor < 0",
    "refund_exceeds_transaction": "select t.seller_id from refunds r join transactions t using (transaction_id) "
    "where r.amount_minor > t.amount_minor",
    "rented_days_out_of_range": "select seller_id from transactions where rented_days > 9999",
    "listing_missing": "select seller_id from transactions where activity = 'immovable_property' "
    "and listing_id is null",
}

#: Every row of a table with the seller it belongs to (refunds: through their transaction).
OWNED_ROWS = {
    "sellers": "select x.*, x.seller_id from sellers x",
    "seller_tins": "select x.*, x.seller_id from seller_tins x",
    "seller_financial_accounts": "select x.*, x.seller_id from seller_financial_accounts x",
    "seller_permanent_establishments": "select x.*, x.seller_id from seller_permanent_establishments x",
    "property_listings": "select x.*, x.seller_id from property_listings x",
    "transactions": "select x.*, x.seller_id from transactions x",
    "refunds": "select x.*, t.seller_id from refunds x join transactions t using (transaction_id)",
    "fx_rates": "select x.*, null from fx_rates x",
}


@pytest.fixture(scope="module")
def bad_market(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult]:
    """1,000 sellers, 5% of them bad on purpose (about five of each kind)."""
    path = tmp_path_factory.mktemp("bad") / "market.db"
    return path, generate_demo(f"sqlite:///{path}", **BAD_ARGS, bad_share=BAD_SHARE)


def owned_rows(path: Path, table: str, without: set[str]) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return sorted((r for r in conn.execute(OWNED_ROWS[table]) if r[-1] not in without), key=repr)


def test_no_bad_share_writes_the_usual_data(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    plain = generate_demo(f"sqlite:///{a}", sellers=300, seed=5, year=YEAR)
    zero = generate_demo(f"sqlite:///{b}", sellers=300, seed=5, year=YEAR, bad_share=0.0)
    assert dump(a) == dump(b)
    assert zero == plain and dict(zero) == dict(zero.counts)
    assert zero.bad_sellers == {} == plain.bad_sellers


def test_bad_sellers_are_deterministic_whatever_the_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_market: tuple[Path, DemoResult]
) -> None:
    path, first = bad_market
    monkeypatch.setattr(generator, "BATCH_SELLERS", 37)
    monkeypatch.setattr(generator, "FLUSH_ROWS", 500)
    again = generate_demo(f"sqlite:///{tmp_path / 'again.db'}", **BAD_ARGS, bad_share=BAD_SHARE)
    assert again.bad_sellers == first.bad_sellers
    assert again == first
    assert dump(tmp_path / "again.db") == dump(path)
    other = generate_demo(f"sqlite:///{tmp_path / 'other.db'}", **{**BAD_ARGS, "seed": 12}, bad_share=BAD_SHARE)
    assert set(other.bad_sellers) != set(first.bad_sellers)


def test_every_other_seller_keeps_its_rows(tmp_path: Path, bad_market: tuple[Path, DemoResult]) -> None:
    path, result = bad_market
    good = tmp_path / "good.db"
    counts = generate_demo(f"sqlite:///{good}", **BAD_ARGS)
    bad = set(result.bad_sellers)
    for table in TABLES:
        assert owned_rows(path, table, bad) == owned_rows(good, table, bad), table
    # the bad sellers keep their number of rows, except the refunds larger than their transaction
    extra = Counter(result.bad_sellers.values())["refund_exceeds_transaction"]
    assert dict(result) == {**counts, "refunds": counts["refunds"] + extra}


def test_the_share_is_spread_over_every_kind(bad_market: tuple[Path, DemoResult]) -> None:
    path, result = bad_market
    n = round(BAD_SHARE * BAD_ARGS["sellers"])
    assert len(result.bad_sellers) == n
    kinds = Counter(result.bad_sellers.values())
    assert set(kinds) == set(BAD_KINDS)
    assert set(kinds.values()) <= {n // len(BAD_KINDS), -(-n // len(BAD_KINDS))}
    sellers = {r["seller_id"]: r for r in rows(path, "SELECT * FROM sellers")}
    assert set(result.bad_sellers) <= set(sellers)
    types = Counter(sellers[sid]["seller_type"] for sid, kind in result.bad_sellers.items() if kind == "name_missing")
    assert set(types) == {"individual", "entity"}  # a last name missing, and a legal name
    # sellers the rules would report otherwise: neither governmental nor listed
    assert not any(sellers[sid]["is_governmental"] or sellers[sid]["is_listed"] for sid in result.bad_sellers)


def test_a_tiny_share_still_makes_one_bad_seller(tmp_path: Path) -> None:
    result = generate_demo(f"sqlite:///{tmp_path / 'm.db'}", sellers=60, seed=3, year=YEAR, bad_share=0.001)
    assert len(result.bad_sellers) == 1


def test_each_bad_seller_has_its_defect_and_no_other_seller_has_one(
    bad_market: tuple[Path, DemoResult],
) -> None:
    path, result = bad_market
    for kind, sql in DEFECTS.items():
        found = {r[0] for r in rows(path, sql)}
        assert found == {sid for sid, k in result.bad_sellers.items() if k == kind}, kind


def test_bad_kinds_name_the_rules_that_catch_them() -> None:
    from reporting.checks import data as datachecks

    assert set(DEFECTS) == set(BAD_KINDS)
    expectations = {
        (e["type"], e["kwargs"].get("column", e["kwargs"].get("column_B")))
        for stage in datachecks.STAGES
        for table in datachecks.load_suite(stage).tables
        for e in table.expectations
    }
    for kind, bad in BAD_KINDS.items():
        assert bad.defect and bad.rules, kind
        for rule in bad.rules:
            if rule.startswith("gx."):  # gx.<expectation_type>.<column>: in one of the suites
                _, expectation, column = rule.split(".", 2)
                assert any(e == expectation and (column == "*" or c == column) for e, c in expectations), (
                    f"{kind}: no expectation {rule}"
                )
    kind = BAD_KINDS["refund_exceeds_transaction"]
    assert kind.caught_by("refund.exceeds_transaction")
    assert kind.caught_by("gx.expect_column_pair_values_a_to_be_greater_than_b.refunds_amount_minor")
    assert not kind.caught_by("refund.exceeds")
    assert not BAD_KINDS["no_address"].caught_by("seller.name_missing")


@pytest.mark.parametrize("share", [-0.01, 1.5, float("nan"), True, "0.1"])
def test_a_bad_share_outside_0_to_1_is_refused(tmp_path: Path, share: Any) -> None:
    with pytest.raises(ValueError, match="bad_share"):
        generate_demo(f"sqlite:///{tmp_path / 'x.db'}", sellers=10, seed=1, year=YEAR, bad_share=share)


def test_the_cli_says_how_many_bad_sellers_of_each_kind_and_not_who(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reporting.cli import main

    db = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["demo-data", "--db", db, "--sellers", "300", "--seed", "3", "--bad-share", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "bad sellers made on purpose: 15 (" in out
    assert all(kind in out for kind in BAD_KINDS)
    assert not re.search(r"S\d{7}", out)  # no seller named
    with pytest.raises(SystemExit) as exit_:
        main(["demo-data", "--db", db, "--sellers", "3", "--seed", "3", "--replace", "--bad-share", "2"])
    assert exit_.value.code == 2
    assert "between 0 and 1" in capsys.readouterr().err
