"""Summing in the source (``[source] aggregate = "source"``) finds, quarantines, decides and sums
exactly what reading every row does, on random small marketplaces with random bad rows (Hypothesis).

Each example is a handful of sellers with tens of transactions, some refunds, a few property
listings and two currencies whose rates start on random dates, written into tables without
constraints (:func:`builders.write_loose`); each row may carry defects
the checks know (:data:`TRANSACTION_DEFECTS`, :data:`REFUND_DEFECTS`, :data:`RATE_DEFECTS`) and
falls at the edges that matter: the year's first and last second, the quarter starts, the zone's
offset changes, the as-of cut-off. The stages up to the rules run both ways; where the run stops,
its findings must be the same, else the extract's quarantine, the control counts, the aggregates
and the decisions (a crash of either run fails the property too). ``--hypothesis-show-statistics``
lists the defects and edges drawn and how the runs ended.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config, write_loose
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from reporting import pipeline
from reporting.checks.staged import MAX_SELLER_TOTAL
from reporting.errors import DataError
from reporting.source import make_engine

AS_OF = date(2026, 1, 31)
RUN_ID = "8e0c2f4a-6b1d-4c3e-9a5f-2d7b1e6c4a30"
TIMESTAMP = datetime(2026, 1, 20, 7, 30)
SECOND = timedelta(seconds=1)

# Europe/Vilnius, 2025: UTC+2, UTC+3 from 30 March 01:00 UTC to 26 October 01:00 UTC
YEAR_START = datetime(2024, 12, 31, 22)  # 1 January 2025 00:00 local
YEAR_END = datetime(2025, 12, 31, 22)  # 1 January 2026 00:00 local (exclusive)
CUT_OFF = datetime(2026, 1, 31, 22)  # the end of the as-of day, 31 January 2026 local (exclusive)
PAYMENT_EDGES = {
    "year's first second": YEAR_START,
    "year's last second": YEAR_END - SECOND,
    "a second before the year": YEAR_START - SECOND,
    "the first second after the year": YEAR_END,
    "Q2 start": datetime(2025, 3, 31, 21),
    "a second before Q2": datetime(2025, 3, 31, 21) - SECOND,
    "Q3 start": datetime(2025, 6, 30, 21),
    "a second before Q3": datetime(2025, 6, 30, 21) - SECOND,
    "Q4 start": datetime(2025, 9, 30, 21),
    "a second before Q4": datetime(2025, 9, 30, 21) - SECOND,
    "summer time starts": datetime(2025, 3, 30, 1),
    "a second before summer time": datetime(2025, 3, 30, 1) - SECOND,
    "summer time ends": datetime(2025, 10, 26, 1),
    "a second before summer time ends": datetime(2025, 10, 26, 1) - SECOND,
    "local midnight of 30 March": datetime(2025, 3, 29, 22),
    "local midnight of 31 March": datetime(2025, 3, 30, 21),
    "local midnight of 26 October": datetime(2025, 10, 25, 21),
    "local midnight of 27 October": datetime(2025, 10, 26, 22),
}
REFUND_EDGES = {"at the cut-off": CUT_OFF, "a second before the cut-off": CUT_OFF - SECOND}
#: the first day of a currency's rates: before the year, on the days around the offset changes
#: and the quarters, on the year's last day, after it (then the year has no rate), or never
RATE_STARTS = (
    date(2024, 12, 31),
    date(2025, 1, 1),
    date(2025, 3, 30),
    date(2025, 3, 31),
    date(2025, 7, 1),
    date(2025, 10, 26),
    date(2025, 10, 27),
    date(2025, 12, 31),
    date(2026, 1, 5),
    None,
)
CURRENCIES = ("PLN", "SEK")
ACTIVITIES = ("sale_of_goods", "personal_services", "transportation_rental", "immovable_property")
YEAR_SECONDS = int((YEAR_END - YEAR_START).total_seconds())


# ------------------------------------------------------------------------------ the marketplaces


@dataclass
class Spec:
    """What Hypothesis draws: rows without defects, then the defects, each applied to the row
    its number picks (modulo the number of rows)."""

    fx_basis: str
    rate_starts: dict[str, date | None]
    later_rates: list[tuple[str, int]]  # (currency, days after its first rate)
    sellers: list[list[dict[str, Any]]]  # per seller, its transactions
    same_address: list[bool]  # per seller: its two listings at one address (one Property Listing)
    defects: list[tuple[str, int]] = field(default_factory=list)  # those that quarantine a seller, mostly
    stops: list[tuple[str, int]] = field(default_factory=list)  # those that stop the run, mostly


refund_spec = st.fixed_dictionaries(
    {
        "at": st.one_of(st.sampled_from(sorted(REFUND_EDGES)), st.integers(0, 200 * 86_400)),
        "share": st.integers(0, 60),  # per cent of the transaction's amount: two may exceed it
        "fee_share": st.integers(0, 60),
    }
)
transaction_spec = st.fixed_dictionaries(
    {
        "paid": st.one_of(st.sampled_from(sorted(PAYMENT_EDGES)), st.integers(0, YEAR_SECONDS - 1)),
        "activity": st.sampled_from(ACTIVITIES),
        "currency": st.sampled_from(("EUR", "EUR", *CURRENCIES)),
        "amount": st.integers(0, 120_000),
        "fee": st.integers(0, 2_000),
        "tax": st.integers(0, 2_000),
        "listing": st.integers(0, 1),
        "rented_days": st.one_of(st.none(), st.integers(0, 14)),
        "refunds": st.lists(refund_spec, max_size=2),
    }
)


def _other(rows: list[dict[str, Any]], i: int) -> dict[str, Any]:
    return rows[(i + 1) % len(rows)]


def _refund_of(m: Marketplace, tx: dict[str, Any]) -> dict[str, Any]:
    """A refund of ``tx`` (its first, else a new one of nothing, a day after the payment)."""
    for r in m.rows["refunds"]:
        if r["transaction_id"] == tx["transaction_id"]:
            return r
    m.refund(tx["transaction_id"], _paid(tx) + timedelta(days=1), 0)
    return m.rows["refunds"][-1]


def _paid(tx: dict[str, Any]) -> datetime:
    return tx["paid_at"] or YEAR_START  # NULL once a defect took it


def _pad_seller(m: Marketplace, seller: str | None) -> None:
    """The seller's id written with spaces around it in every table (the extract trims it)."""
    for table in ("sellers", "seller_tins", "transactions", "property_listings"):
        for row in m.rows[table]:
            if row["seller_id"] == seller:
                row["seller_id"] = f" {seller} "


def _pad_transaction_id(m: Marketplace, tx: dict[str, Any]) -> None:
    """The transaction's id and its refunds' reference to it with spaces around them."""
    old = tx["transaction_id"]
    for r in m.rows["refunds"]:
        if r["transaction_id"] == old:
            r["transaction_id"] = f" {old} "
    tx["transaction_id"] = f" {old} "


def _set(**values: Any) -> Callable[[Marketplace, dict[str, Any], int], None]:
    def apply(m: Marketplace, row: dict[str, Any], i: int) -> None:
        row.update(values)

    return apply


def _negative(column: str) -> Callable[[Marketplace, dict[str, Any], int], None]:
    def apply(m: Marketplace, row: dict[str, Any], i: int) -> None:
        row[column] = -1 - (row[column] or 0)

    return apply


def _listing_of_another(m: Marketplace, tx: dict[str, Any], i: int) -> None:
    others = [p for p in m.rows["property_listings"] if p["seller_id"] != tx["seller_id"]]
    tx.update(activity="immovable_property", listing_id=others[i % len(others)]["listing_id"], rented_days=1)


def _accented(code: str | None) -> str:
    """The code with an accent on its last letter: 'EUR' -> 'EUŔ', 'PLN' -> 'PLŃ', 'SEK' -> 'SEĶ'."""
    text = code or "EUR"
    return text[:-1] + {"R": "\u0154", "N": "\u0143", "K": "\u0136"}.get(text[-1], text[-1] + "\u0301")


def _own_listing(tx: dict[str, Any]) -> str:
    return f"L{str(tx['seller_id']).strip()}A"


TX = Callable[[Marketplace, dict[str, Any], int], None]
#: defects of a transaction row: (the row, the marketplace) -> the row changed
TRANSACTION_DEFECTS: dict[str, TX] = {
    "activity in capitals": lambda m, t, i: t.update(activity=str(t["activity"]).capitalize()),
    "activity unknown": _set(activity="rental"),
    "activity NULL": _set(activity=None),
    "activity blank": _set(activity="  "),
    "activity space-padded": lambda m, t, i: t.update(activity=f" {t['activity']} "),
    "activity with an accent": lambda m, t, i: t.update(activity=str(t["activity"]).replace("a", "\u00e1", 1)),
    "currency unknown": _set(currency="ABC"),
    "currency NULL": _set(currency=None),
    "currency blank": _set(currency="   "),
    "currency lower-case": lambda m, t, i: t.update(currency=str(t["currency"]).lower()),
    "currency space-padded": lambda m, t, i: t.update(currency=f" {t['currency']} "),
    "currency with an accent": lambda m, t, i: t.update(currency=_accented(t["currency"])),
    "currency without any rate": _set(currency="USD"),
    "amount negative": _negative("amount_minor"),
    "amount NULL": _set(amount_minor=None),
    "fee negative": _negative("fee_minor"),
    "fee NULL": _set(fee_minor=None),
    "tax negative": _negative("tax_minor"),
    "tax NULL": _set(tax_minor=None),
    "rented_days negative": lambda m, t, i: t.update(rented_days=-1 - (t["rented_days"] or 0)),
    "rented_days NULL": _set(rented_days=None),
    "rented_days on a non-property row": lambda m, t, i: t.update(
        activity="personal_services", listing_id=None, rented_days=2
    ),
    "listing missing": _set(activity="immovable_property", listing_id=None, rented_days=3),
    "listing of another seller": _listing_of_another,
    "listing id blank": lambda m, t, i: t.update(listing_id="  "),
    "listing unknown": _set(activity="immovable_property", listing_id="LNONE", rented_days=1),
    "listing on a non-property row": lambda m, t, i: t.update(
        activity="sale_of_goods", listing_id=_own_listing(t), rented_days=None
    ),
    "listing id lower-case": lambda m, t, i: t.update(
        activity="immovable_property", listing_id=_own_listing(t).lower(), rented_days=1
    ),
    "listing id space-padded": lambda m, t, i: t.update(
        activity="immovable_property", listing_id=f" {_own_listing(t)} ", rented_days=1
    ),
    "transaction id duplicate": lambda m, t, i: t.update(
        transaction_id=_other(m.rows["transactions"], i)["transaction_id"]
    ),
    "transaction id differs by case": lambda m, t, i: t.update(
        transaction_id=str(_other(m.rows["transactions"], i)["transaction_id"]).lower()
    ),
    "transaction id differs by spaces": lambda m, t, i: t.update(
        transaction_id=f" {_other(m.rows['transactions'], i)['transaction_id']} "
    ),
    "transaction id space-padded": lambda m, t, i: _pad_transaction_id(m, t),
    "transaction id NULL": _set(transaction_id=None),
    "paid_at NULL": _set(paid_at=None),
    "seller id lower-case": lambda m, t, i: t.update(seller_id=str(t["seller_id"]).lower()),
    "seller id space-padded everywhere": lambda m, t, i: _pad_seller(m, t["seller_id"]),
    "seller id NULL": _set(seller_id=None),
    "amount overflows": _set(amount_minor=2**62),
    "fee overflows": _set(fee_minor=2**62),
    "amount at the seller's limit": _set(amount_minor=MAX_SELLER_TOTAL - 5_000),
}


def _refund_defect(change: Callable[[Marketplace, dict[str, Any], dict[str, Any], int], None]) -> TX:
    """A defect of a refund of the transaction (its first, made when it has none)."""

    def apply(m: Marketplace, t: dict[str, Any], i: int) -> None:
        change(m, t, _refund_of(m, t), i)

    return apply


def _exceed_together(m: Marketplace, t: dict[str, Any], r: dict[str, Any], i: int) -> None:
    m.refund(t["transaction_id"], r["refunded_at"] or CUT_OFF, (t["amount_minor"] or 0) - (r["amount_minor"] or 0) + 1)


def _other_refund(m: Marketplace, r: dict[str, Any]) -> dict[str, Any]:
    refunds = m.rows["refunds"]
    return refunds[(refunds.index(r) + 1) % len(refunds)]


REFUND_DEFECTS: dict[str, TX] = {
    "refund larger than its transaction": _refund_defect(
        lambda m, t, r, i: r.update(amount_minor=(t["amount_minor"] or 0) + 1)
    ),
    "refunded fee larger than the fee": _refund_defect(
        lambda m, t, r, i: r.update(fee_minor=(t["fee_minor"] or 0) + 1)
    ),
    "refunds together larger": _refund_defect(_exceed_together),
    "refund before the payment": _refund_defect(lambda m, t, r, i: r.update(refunded_at=_paid(t) - SECOND)),
    "refund at the payment's second": _refund_defect(lambda m, t, r, i: r.update(refunded_at=_paid(t))),
    "refunded_at NULL": _refund_defect(lambda m, t, r, i: r.update(refunded_at=None)),
    "refund at the cut-off": _refund_defect(lambda m, t, r, i: r.update(refunded_at=CUT_OFF)),
    "refund a second before the cut-off": _refund_defect(lambda m, t, r, i: r.update(refunded_at=CUT_OFF - SECOND)),
    "refund negative": _refund_defect(lambda m, t, r, i: r.update(amount_minor=-1)),
    "refund amount NULL": _refund_defect(lambda m, t, r, i: r.update(amount_minor=None)),
    "refunded fee negative": _refund_defect(lambda m, t, r, i: r.update(fee_minor=-1)),
    "refunded tax NULL": _refund_defect(lambda m, t, r, i: r.update(tax_minor=None)),
    "refund id duplicate": _refund_defect(lambda m, t, r, i: r.update(refund_id=_other_refund(m, r)["refund_id"])),
    "refund id differs by case": _refund_defect(
        lambda m, t, r, i: r.update(refund_id=str(_other_refund(m, r)["refund_id"]).lower())
    ),
    "refund id differs by spaces": _refund_defect(
        lambda m, t, r, i: r.update(refund_id=f" {_other_refund(m, r)['refund_id']} ")
    ),
    "refund id NULL": _refund_defect(lambda m, t, r, i: r.update(refund_id=None)),
    "refund of a lower-case transaction id": _refund_defect(
        lambda m, t, r, i: r.update(transaction_id=str(r["transaction_id"]).lower())
    ),
    "refund of a space-padded transaction id": _refund_defect(
        lambda m, t, r, i: r.update(transaction_id=f" {r['transaction_id']} ")
    ),
    "refund of an unknown transaction": _refund_defect(lambda m, t, r, i: r.update(transaction_id="TNONE")),
    "refund overflows": _refund_defect(lambda m, t, r, i: r.update(amount_minor=2**62)),
}


def _rates(change: Callable[[dict[str, Any]], None]) -> TX:
    def apply(m: Marketplace, t: dict[str, Any], i: int) -> None:
        if m.rows["fx_rates"]:
            change(m.rows["fx_rates"][i % len(m.rows["fx_rates"])])

    return apply


RATE_DEFECTS: dict[str, TX] = {
    "rate's currency lower-case": _rates(lambda r: r.update(currency=r["currency"].lower())),
    "rate's currency space-padded": _rates(lambda r: r.update(currency=f" {r['currency']} ")),
    "rate zero": _rates(lambda r: r.update(units_per_eur="0")),
}
DEFECTS: dict[str, TX] = {**TRANSACTION_DEFECTS, **REFUND_DEFECTS, **RATE_DEFECTS}
#: the defects that stop the run on PostgreSQL (a key that is not unique or missing, a row of no
#: seller or no transaction, an overflow, a rate missing or wrong): drawn apart and more rarely,
#: so that most examples go on to compare the quarantine, the aggregates and the decisions
STOPPING = frozenset(
    {
        "transaction id duplicate",
        "transaction id differs by spaces",
        "transaction id NULL",
        "seller id lower-case",
        "seller id NULL",
        "amount overflows",
        "fee overflows",
        "amount at the seller's limit",
        "currency without any rate",
        "currency NULL",  # the aggregates' reconciliation by currency stops the run
        "currency blank",
        "refund id duplicate",
        "refund id differs by spaces",
        "refund id NULL",
        "refund of a lower-case transaction id",
        "refund of a space-padded transaction id",
        "refund of an unknown transaction",
        "refund overflows",
        "rate zero",
    }
)


#: the first rate of a currency: mostly before the year, else any of RATE_STARTS
rate_start = st.one_of(st.just(date(2024, 12, 31)), st.just(date(2024, 12, 31)), st.sampled_from(RATE_STARTS))
quarantining = st.tuples(st.sampled_from(sorted(set(DEFECTS) - STOPPING)), st.integers(0, 1_000))
stopping = st.tuples(st.sampled_from(sorted(STOPPING)), st.integers(0, 1_000))
specs = st.builds(
    Spec,
    fx_basis=st.sampled_from(("year_end", "payment_date")),
    rate_starts=st.fixed_dictionaries({c: rate_start for c in CURRENCIES}),
    later_rates=st.lists(st.tuples(st.sampled_from(CURRENCIES), st.integers(1, 300)), max_size=3),
    sellers=st.lists(st.lists(transaction_spec, min_size=1, max_size=10), min_size=1, max_size=6),
    same_address=st.lists(st.booleans(), min_size=6, max_size=6),
    defects=st.lists(quarantining, min_size=1, max_size=6),
    stops=st.one_of(st.just([]), st.lists(stopping, max_size=1)),
)


def build(spec: Spec) -> Marketplace:
    """The marketplace of ``spec``, its defects applied in order."""
    m = Marketplace()
    for c, start in spec.rate_starts.items():
        if start is not None:
            m.rate(c, start.isoformat(), "4.2655" if c == "PLN" else "11.4590")
            event(f"rates of {c} from {start}")
        else:
            event(f"no rate of {c}")
    for c, days in spec.later_rates:
        start = spec.rate_starts[c]
        if start is not None:
            day = start + timedelta(days=days)
            if all(r["currency"] != c or r["rate_date"] != day for r in m.rows["fx_rates"]):
                m.rate(c, day.isoformat(), f"{3 + days / 100:.4f}")
    for n, transactions in enumerate(spec.sellers, 1):
        seller = m.seller(f"S{n}")
        m.listing(f"L{seller}A", seller)
        if spec.same_address[n - 1]:
            m.listing(f"L{seller}B", seller)  # the same address: one Property Listing
        else:
            m.listing(f"L{seller}B", seller, address_street="Vokieciu g.", address_building=str(n))
        for t in transactions:
            if isinstance(t["paid"], str):
                paid = PAYMENT_EDGES[t["paid"]]
                event(f"payment: {t['paid']}")
            else:
                paid = YEAR_START + timedelta(seconds=t["paid"])
            prop = t["activity"] == "immovable_property"
            tid = m.tx(
                seller,
                paid,
                t["amount"],
                activity=t["activity"],
                currency=t["currency"],
                fee_minor=t["fee"],
                tax_minor=t["tax"],
                listing_id=f"L{seller}{'AB'[t['listing']]}" if prop else None,
                rented_days=t["rented_days"] if prop else None,
            )
            for r in t["refunds"]:
                if isinstance(r["at"], str):
                    at = REFUND_EDGES[r["at"]]
                    event(f"refund: {r['at']}")
                else:
                    at = paid + timedelta(seconds=r["at"])
                fee = t["fee"] * r["fee_share"] // 100
                m.refund(tid, at, t["amount"] * r["share"] // 100, fee_minor=fee)  # type: ignore[arg-type]
    m.listing("LX", "NOBODY")  # a listing of no seller of the period
    for name, i in [*spec.defects, *spec.stops]:
        rows = m.rows["transactions"]
        DEFECTS[name](m, rows[i % len(rows)], i)
        event(f"defect: {name}")
    event(f"fx_basis {spec.fx_basis}")
    n = len(m.rows["transactions"])
    event(f"{n // 10 * 10}-{n // 10 * 10 + 9} transactions")
    event(f"{min(len(m.rows['refunds']), 10)}{'+' if len(m.rows['refunds']) >= 10 else ''} refunds")
    return m


# ------------------------------------------------------------------------------ the runs


def reload(url: str, m: Marketplace) -> None:
    """The tables emptied and filled with ``m``'s rows (made once by :func:`write_loose`)."""
    engine = make_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.begin() as conn:
            for table in m.rows:
                conn.execute(meta.tables[table].delete())
            for table, rows in m.rows.items():
                if rows:
                    conn.execute(meta.tables[table].insert(), rows)
    finally:
        engine.dispose()


def run_stages(work: Path, url: str, where: str, fx_basis: str) -> dict[str, Any]:
    """Prepare, extract, aggregate and the rules, summing ``where`` ("local" or "source"): the
    findings of a run that stops, else what the two ways must share."""
    config = write_config(work / f"{where}.toml", fx_basis=fx_basis, extra=f'\n[source]\naggregate = "{where}"\n')
    run_dir = Path(
        pipeline.prepare(
            config_path=config,
            year=2025,
            as_of=AS_OF,
            out_dir=work / f"out-{where}",
            staging_root=work / f"st-{where}",
            source_url=url,
            run_id=RUN_ID,
            timestamp=TIMESTAMP,
            ledger_url=f"sqlite:///{work}/ledger-{where}.sqlite3",
        )
    )
    try:
        pipeline.extract(run_dir, url)
        pipeline.aggregate(run_dir)
        pipeline.apply_rules(run_dir)
    except DataError as exc:
        return {"findings": sorted((f.rule, f.table, _row(f.key), f.seller_id or "", f.message) for f in exc.findings)}
    except Exception as exc:  # a crash is a difference too: say which way crashed
        exc.add_note(f"raised by the run with [source] aggregate = {where!r}")
        raise
    extract = json.loads((run_dir / "extract" / "extract.json").read_text())

    def rows(path: str) -> list[dict[str, Any]]:
        return pq.read_table(run_dir / path).to_pylist()

    return {
        "quarantine": rows("extract/quarantine_extract.parquet"),
        "identity": rows("extract/quarantine_identity.parquet"),
        "counts": extract["counts"],
        "control_counts": rows("extract/control_counts.parquet"),
        "totals": rows("aggregate/activity_totals.parquet"),
        "decisions": sorted(rows("rules/decisions.parquet"), key=repr),
        "reported": sorted(rows("rules/reported.parquet"), key=repr),
        "at_source": extract.get("aggregated_at_source"),
    }


def _row(key: str) -> str:
    """A finding's key, with a keyless row's number left out: a row without its key is named by
    its number in the staged file (reporting.checks.data), and a run that sums in the source
    stages only the rows it reads for the checks, so the same row has another number there."""
    return "row" if key.startswith("row ") and key[4:].isdigit() else key


def assert_same(url: str, spec: Spec) -> None:
    m = build(spec)
    reload(url, m)
    with tempfile.TemporaryDirectory(prefix="dac7-pushdown-") as d:
        local = run_stages(Path(d), url, "local", spec.fx_basis)
        source = run_stages(Path(d), url, "source", spec.fx_basis)
    at_source = source.pop("at_source", None)
    local.pop("at_source", None)
    if "findings" in local:
        event("the run stops")
        for rule in sorted({f[0] for f in local["findings"]}):
            event(f"stops: {rule}")
    else:
        quarantined = {r["seller_id"] for r in local["quarantine"]}
        event(f"{len(quarantined)} seller(s) quarantined")
        for rule in sorted({r["rule"] for r in local["quarantine"]}):
            event(f"quarantined: {rule}")
        event(f"{sum(d['decision'] == 'reported' for d in local['decisions'])} seller(s) reported")
        if at_source is not None:
            read = " (some rows read for the checks)" if at_source["read_transactions"] else ""
            event(f"summed in the source{read}")
    assert source.keys() == local.keys(), (local.get("findings"), source.get("findings"))
    for key in local:
        assert source[key] == local[key], key


@pytest.fixture
def loose_pg(pg_url: str) -> str:
    return write_loose(Marketplace(), pg_url)


@pytest.fixture
def loose_mariadb(mariadb_url: str) -> str:
    return write_loose(Marketplace(), mariadb_url, case_blind=True)


#: about 7 s an example (two runs through the rules stage, their data checks included): 10 take
#: about 75 s on PostgreSQL; MariaDB runs half as many. Longer on request:
#: ``DAC7_PUSHDOWN_EXAMPLES=200``.
EXAMPLES = int(os.environ.get("DAC7_PUSHDOWN_EXAMPLES", "10"))
PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _sale(**values: Any) -> dict[str, Any]:
    """A clean sale of EUR 100.00 in May, as :data:`transaction_spec` draws it."""
    return {
        "paid": 10_500_000,
        "activity": "sale_of_goods",
        "currency": "EUR",
        "amount": 100_00,
        "fee": 0,
        "tax": 0,
        "listing": 0,
        "rented_days": None,
        "refunds": [],
        **values,
    }


def one_defect(defect: str, sales: int = 1) -> Spec:
    """One seller with ``sales`` clean sales, the last of them with ``defect``."""
    rated = date(2024, 12, 31)
    return Spec(
        fx_basis="year_end",
        rate_starts=dict.fromkeys(CURRENCIES, rated),
        later_rates=[],
        sellers=[[_sale() for _ in range(sales)]],
        same_address=[True] * 6,
        defects=[(defect, sales - 1)],
    )


@pytest.mark.pg
@pytest.mark.slow
@settings(PROPERTY, max_examples=EXAMPLES)
@given(spec=specs)
def test_postgresql_sums_what_a_full_read_sums(loose_pg: str, spec: Spec) -> None:
    assert_same(loose_pg, spec)


@pytest.mark.mariadb
@pytest.mark.slow
@settings(PROPERTY, max_examples=max(EXAMPLES // 2, 1))
@given(spec=specs)
# Counterexamples this property found, kept as examples: under a case- and accent-blind collation
# the source compared activity and currency as the collation does, so 'Sale_of_goods' and an
# accented 'EUR' were not flagged for the checks and were summed (a crash in the rules stage, or
# the accented currency counted as EUR) where a full read quarantines the seller. Every cleaned
# text is now compared as a binary string there.
@example(spec=one_defect("activity in capitals"))
@example(spec=one_defect("currency with an accent", sales=2))
def test_mariadb_case_blind_sums_what_a_full_read_sums(loose_mariadb: str, spec: Spec) -> None:
    assert_same(loose_mariadb, spec)
