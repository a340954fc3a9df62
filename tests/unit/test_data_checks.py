"""Great Expectations data checks (reporting.checks.data): every expectation fails on a minimal
bad row and passes on good data; findings carry keys, never personal values.

Great Expectations costs about 2.5 s to import and a fraction of a second per table, so the
module validates each staged layout once (module-scoped fixtures: a good and a bad run per
stage, the bad extract and identity runs with Data Docs, and each bad layout again in chunks of
a few rows, with Data Docs) and the many tests read those reports.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reporting.checks import data as datachecks
from reporting.checks.data import (
    ChecksWorker,
    DataCheckReport,
    DataCheckStructureError,
    ExpectationSummary,
    load_suite,
    run_data_checks,
)
from reporting.findings import Finding, Severity
from reporting.pushdown import SOURCE_TOTALS_SCHEMA
from reporting.stages.extract import TABLES
from reporting.stages.rules import DECISION_SCHEMA
from reporting.vocabulary import DECISION_CODES

YEAR = 2025
PERIOD_START = datetime(2025, 1, 1)
PERIOD_END = datetime(2026, 1, 1)
AS_OF_END = datetime(2026, 2, 1)  # birth dates up to 2026-12-31 are valid (EU rule 40130)
PERIOD = {
    "year": YEAR,
    "as_of_end_utc": AS_OF_END,
    "period_start_utc": PERIOD_START,
    "period_end_utc": PERIOD_END,
}

# Personal values placed in bad rows: none may appear in a finding, a result or the Data Docs.
SECRET_TIN = "LT39001010000"
SECRET_IBAN = "LT601010012345678901"
SECRET_NAMES = ("Zebulonas", "Quirinaite", "Xylophonika UAB")
SECRET_BIRTH_DATES = (date(1899, 12, 31), date(2027, 1, 1))
SECRETS = (
    SECRET_TIN,
    SECRET_IBAN,
    *SECRET_NAMES,
    *(d.isoformat() for d in SECRET_BIRTH_DATES),
    *(d.strftime("%d.%m.%Y") for d in SECRET_BIRTH_DATES),
    *(d.strftime("%Y%m%d") for d in SECRET_BIRTH_DATES),
)

# GX's own DeprecationWarnings are ignored by module in pyproject.toml; on this stack (GX 1.24.1,
# pandas 3) it raises no other warning here, so no filterwarnings marker is needed. The GX runs
# live in one module-scoped fixture (about 6 s in all); the timeout guards against a slow stack.
pytestmark = [pytest.mark.timeout(120)]


# --- staged layout -----------------------------------------------------------------------------

EXTRACT_SCHEMAS = {table: pa.schema([(name, typ) for name, typ, _ in spec]) for table, spec in TABLES.items()}
ACTIVITY_TOTALS_SCHEMA = pa.schema(
    [
        ("seller_id", pa.string()),
        ("activity", pa.string()),
        ("listing_id", pa.string()),
        ("currency", pa.string()),
        ("quarter", pa.int32()),
        ("amount_minor", pa.int64()),
        ("fee_minor", pa.int64()),
        ("tax_minor", pa.int64()),
        ("activities", pa.int64()),
        ("rented_days", pa.int64()),
        ("transactions", pa.int64()),
        ("refunded_transactions", pa.int64()),
        ("fully_refunded_transactions", pa.int64()),
        ("refunds_after_as_of", pa.int64()),
    ]
)


def write(run_dir: Path, rel: str, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    path = run_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    full = [{name: row.get(name) for name in schema.names} for row in rows]
    pq.write_table(pa.Table.from_pylist(full, schema=schema), path)


def with_types(schema: pa.Schema, **types: pa.DataType) -> pa.Schema:
    for name, typ in types.items():
        schema = schema.set(schema.get_field_index(name), pa.field(name, typ))
    return schema


def seller(seller_id: str | None, kind: str = "individual", **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "seller_id": seller_id,
        "seller_type": kind,
        "residence_country": "LT",
        "address_country": "LT",
    }
    if kind == "individual":
        row |= {"first_name": "Ona", "last_name": "Onaite", "birth_date": date(1980, 5, 17)}
    else:
        row |= {"legal_name": "Example UAB", "business_registration_number": "304000001"}
    return row | kw


def tx(transaction_id: str | None, seller_id: str | None = "S1", **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "transaction_id": transaction_id,
        "seller_id": seller_id,
        "activity": "sale_of_goods",
        "paid_at": datetime(2025, 3, 1, 12, 0),
        "currency": "EUR",
        "amount_minor": 100_000,
        "fee_minor": 1_000,
        "tax_minor": 1_000,
    }
    return row | kw


def refund(refund_id: str | None, transaction_id: str | None = "T1", **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "refund_id": refund_id,
        "transaction_id": transaction_id,
        "refunded_at": datetime(2025, 4, 1),
        "amount_minor": 10,
        "fee_minor": 1,
        "tax_minor": 1,
    }
    return row | kw


def totals(seller_id: str | None, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "seller_id": seller_id,
        "activity": "sale_of_goods",
        "listing_id": "",
        "currency": "EUR",
        "quarter": 1,
        "amount_minor": 1000,
        "fee_minor": 100,
        "tax_minor": 10,
        "activities": 1,
        "rented_days": 0,
        "transactions": 1,
        "refunded_transactions": 0,
        "fully_refunded_transactions": 0,
        "refunds_after_as_of": 0,
    }
    return row | kw


SELLER_COUNTS_SCHEMA = pa.schema(
    [("seller_id", pa.string()), ("source_transactions", pa.int64()), ("undated_transactions", pa.int64())]
)


def counts(seller_id: str, source: int, undated: int = 0) -> dict[str, Any]:
    return {"seller_id": seller_id, "source_transactions": source, "undated_transactions": undated}


def decision(seller_id: str | None, code: str | None = "reported") -> dict[str, Any]:
    return {"seller_id": seller_id, "seller_type": "individual", "decision": code}


GOOD_SELLERS = [
    seller("S1"),
    seller("S2", "entity", residence_country="DE", address_country="DE"),
    seller("S3", birth_date=date(1900, 1, 1)),  # the first valid birth date
    seller("S4", birth_date=date(2026, 12, 31)),  # the last valid one: 31 December of the as-of year
    seller("S5", birth_date=None),  # a birth date is optional
]


def stage_good_extract(run_dir: Path) -> None:
    s = EXTRACT_SCHEMAS
    write(run_dir, "extract/sellers.parquet", GOOD_SELLERS, s["sellers"])
    write(
        run_dir,
        "extract/transactions.parquet",
        [
            tx("T1", paid_at=PERIOD_START),  # the first instant of the period
            tx("T2", "S2", activity="immovable_property", listing_id="L1", currency="PLN", rented_days=3),
            tx("T3", activity="personal_services", paid_at=PERIOD_END - timedelta(microseconds=1), fee_minor=None),
            tx("T4", "S2", activity="transportation_rental", currency="SEK", tax_minor=0),
        ],
        s["transactions"],
    )
    write(
        run_dir,
        "extract/refunds.parquet",
        [
            refund("R1", amount_minor=40_000, fee_minor=500, tax_minor=0),
            refund("R2", amount_minor=60_000, fee_minor=500, tax_minor=1_000),  # together exactly T1
            refund("R3", "T3", fee_minor=None),
        ],
        s["refunds"],
    )
    write(
        run_dir, "extract/property_listings.parquet", [{"listing_id": "L1", "seller_id": "S2"}], s["property_listings"]
    )
    write(
        run_dir,
        "extract/seller_tins.parquet",
        [{"seller_id": "S1", "tin": "38001010000", "issued_by": "LT"}],
        s["seller_tins"],
    )
    write(
        run_dir,
        "extract/seller_financial_accounts.parquet",
        [{"seller_id": "S1", "identifier": "LT121000011101001000"}],
        s["seller_financial_accounts"],
    )
    write(run_dir, "extract/seller_permanent_establishments.parquet", [], s["seller_permanent_establishments"])
    write(
        run_dir,
        "extract/control_counts.parquet",
        controls(transactions=(4, 4), sellers=(5, 5), refunds=(3, 3)),
        CONTROL_SCHEMA,
    )
    write(
        run_dir,
        "extract/fx_rates.parquet",
        [
            {"currency": "PLN", "rate_date": date(2025, 12, 31), "units_per_eur": "4.25"},
            {"currency": "PLN", "rate_date": date(2025, 12, 30), "units_per_eur": "4.26"},
            {"currency": "SEK", "rate_date": date(2025, 12, 31), "units_per_eur": "11"},
        ],
        s["fx_rates"],
    )


CONTROL_SCHEMA = pa.schema([("table_name", pa.string()), ("written", pa.int64()), ("source_count", pa.int64())])


def controls(**counts: tuple[int, int]) -> list[dict[str, Any]]:
    return [{"table_name": t, "written": w, "source_count": c} for t, (w, c) in counts.items()]


def stage_bad_extract(run_dir: Path) -> None:
    """One bad row per expectation (keys name what is wrong). The amount columns of
    transactions and refunds.amount_minor are staged as floats: the integer type checks."""
    s = EXTRACT_SCHEMAS
    write(
        run_dir,
        "extract/sellers.parquet",
        [
            seller("S1"),
            seller(None, first_name=SECRET_NAMES[0], birth_date=SECRET_BIRTH_DATES[0]),  # row 2
            seller("S_DUP"),
            seller("S_DUP"),
        ],
        s["sellers"],
    )
    write(
        run_dir,
        "extract/transactions.parquet",
        [
            tx("T1", amount_minor=1_000_000),
            tx("T_BIG", amount_minor=100, fee_minor=10, tax_minor=5),
            tx("T_SPLIT", amount_minor=100),
            tx(None),  # row 4
            tx("T_DUP"),
            tx("T_DUP"),
            tx("T_NOSELLER", None),
            tx("T_NOACT", activity=None),
            tx("T_BADACT", activity="gambling"),
            tx("T_NOCUR", currency=None),
            tx("T_BADCUR", currency="XAU"),  # not a payment currency, and no rate either
            tx("T_NORATE", currency="NOK"),
            tx("T_NOAMT", amount_minor=None),
            tx("T_NEGAMT", amount_minor=-1),
            tx("T_NEGFEE", fee_minor=-1),
            tx("T_NEGTAX", tax_minor=-1),
            tx("T_NEGDAYS", activity="immovable_property", listing_id="L1", rented_days=-1),
            tx("T_NOPAID", paid_at=None),
            tx("T_EARLY", paid_at=PERIOD_START - timedelta(microseconds=1)),
            tx("T_LATE", paid_at=PERIOD_END),  # the end is exclusive
            tx("T_FAR", paid_at=datetime(9999, 12, 31)),  # beyond pandas' nanoseconds: clamped, still outside
            tx("T_NOLISTING", activity="immovable_property"),
            tx("T_STRAYLISTING", listing_id="L1"),
        ],
        with_types(s["transactions"], amount_minor=pa.float64(), fee_minor=pa.float64(), tax_minor=pa.float64()),
    )
    write(
        run_dir,
        "extract/refunds.parquet",
        [
            refund(None),  # row 1
            refund("R_DUP"),
            refund("R_DUP"),
            refund("R_NOTX", None),
            refund("R_ORPHAN", "T_GONE"),
            refund("R_NOAT", refunded_at=None),
            refund("R_NOAMT", amount_minor=None),
            refund("R_NEGAMT", amount_minor=-1),
            refund("R_NEGFEE", fee_minor=-1),
            refund("R_NEGTAX", tax_minor=-1),
            refund("R_OVER", "T_BIG", amount_minor=101, fee_minor=11, tax_minor=6),  # alone above T_BIG
            refund("R_SPLIT1", "T_SPLIT", amount_minor=60, fee_minor=0, tax_minor=0),  # together above T_SPLIT
            refund("R_SPLIT2", "T_SPLIT", amount_minor=60, fee_minor=0, tax_minor=0),
        ],
        with_types(s["refunds"], amount_minor=pa.float64()),
    )
    write(
        run_dir,
        "extract/property_listings.parquet",
        [
            {"listing_id": "L1", "seller_id": "S1"},
            {"listing_id": None, "seller_id": "S1"},  # row 2
            {"listing_id": "L_DUP", "seller_id": "S1"},
            {"listing_id": "L_DUP", "seller_id": "S1"},
            {"listing_id": "L_NOSELLER", "seller_id": None},
        ],
        s["property_listings"],
    )
    write(
        run_dir,
        "extract/seller_tins.parquet",
        [
            {"seller_id": None, "tin": SECRET_TIN, "issued_by": "LT"},  # row 1
            {"seller_id": "S1", "tin": SECRET_TIN, "issued_by": None},  # row 2
            {"seller_id": "S1", "tin": SECRET_TIN, "issued_by": "ZZ"},
        ],
        s["seller_tins"],
    )
    write(
        run_dir,
        "extract/seller_financial_accounts.parquet",
        [{"seller_id": None, "identifier": SECRET_IBAN, "account_holder_name": SECRET_NAMES[1]}],  # row 1
        s["seller_financial_accounts"],
    )
    write(
        run_dir,
        "extract/seller_permanent_establishments.parquet",
        [
            {"seller_id": None, "country": "LT"},  # row 1
            {"seller_id": "S1", "country": None},  # row 2
            {"seller_id": "S1", "country": "QQ"},
        ],
        s["seller_permanent_establishments"],
    )
    write(
        run_dir,
        "extract/fx_rates.parquet",
        [
            {"currency": None, "rate_date": date(2025, 12, 31), "units_per_eur": "1"},  # row 1
            {"currency": "PLN", "rate_date": None, "units_per_eur": "4.2"},  # row 2
            {"currency": "PLN", "rate_date": date(2025, 12, 31), "units_per_eur": "4.25"},
            {"currency": "PLN", "rate_date": date(2025, 12, 31), "units_per_eur": "4.26"},
            {"currency": "ABC", "rate_date": date(2025, 12, 30), "units_per_eur": "1"},
            {"currency": "XAU", "rate_date": date(2026, 1, 2), "units_per_eur": "0.0004"},  # after the year
        ],
        s["fx_rates"],
    )
    write(
        run_dir,
        "extract/control_counts.parquet",
        controls(transactions=(20, 21), sellers=(4, 4), refunds=(9, 8)),  # rows lost or gained on the way
        CONTROL_SCHEMA,
    )


def stage_good_identity(run_dir: Path) -> None:
    write(run_dir, "extract/sellers.parquet", GOOD_SELLERS, EXTRACT_SCHEMAS["sellers"])


def stage_bad_identity(run_dir: Path) -> None:
    rows = [
        seller("I_NOTYPE", None),
        seller("I_BADTYPE", "trust", first_name=SECRET_NAMES[0]),
        seller("I_NOFIRST", first_name=None, last_name=SECRET_NAMES[1]),
        seller("I_NOLAST", last_name=None, first_name=SECRET_NAMES[0]),
        seller("I_NOLEGAL", "entity", legal_name=None, first_name=SECRET_NAMES[0]),
        seller("I_NORES", residence_country=None),
        seller("I_BADRES", residence_country="QQ"),
        seller("I_NOADDR", address_country=None),
        seller("I_BADADDR", address_country="UK"),
        seller("I_OLD", birth_date=SECRET_BIRTH_DATES[0], last_name=SECRET_NAMES[1]),
        seller("I_FUTURE", birth_date=SECRET_BIRTH_DATES[1]),
        seller("I_NOBRN", "entity", legal_name=SECRET_NAMES[2], business_registration_number=None),
    ]
    write(run_dir, "extract/sellers.parquet", rows, EXTRACT_SCHEMAS["sellers"])


def pushed(seller_id: str, amount: int, fee: int, tax: int) -> dict[str, Any]:
    """One transaction of a seller as the source sums it, without refunds."""
    sums = {"amount_minor": amount, "fee_minor": fee, "tax_minor": tax, "gross_amount_minor": amount}
    counts = {"activities": 1, "transactions": 1, "refunded_transactions": 0, "fully_refunded_transactions": 0}
    rest = {"refunded_amount_minor": 0, "refunds_after_as_of": 0, "refunded_after_as_of_minor": 0, "refunds": 0}
    keys = {"seller_id": seller_id, "activity": "sale_of_goods", "listing_id": None, "currency": "EUR", "quarter": 2}
    return keys | {"local_date": None, "rented_days": 0} | sums | counts | rest


def stage_good_aggregates(run_dir: Path) -> None:
    write(
        run_dir,
        "aggregate/activity_totals.parquet",
        [
            totals("S1"),
            totals(
                "S1",
                quarter=4,
                amount_minor=0,
                fee_minor=0,
                tax_minor=0,
                activities=0,
                fully_refunded_transactions=1,
                refunded_transactions=1,
            ),
            totals("S2", activity="immovable_property", listing_id="L1", quarter=2, rented_days=None),
        ],
        ACTIVITY_TOTALS_SCHEMA,
    )
    codes = [*DECISION_CODES, "quarantined:gx.expect_column_values_to_be_between.amount_minor"]
    write(run_dir, "rules/decisions.parquet", [decision(f"S{i}", c) for i, c in enumerate(codes, 1)], DECISION_SCHEMA)
    # the extract they reconcile with: EUR 3,000 less a refund of 1,000 applied by the as-of
    # date (one after it is not applied), fees 300 less 100, taxes 30 less 10
    s = EXTRACT_SCHEMAS
    write(
        run_dir,
        "extract/transactions.parquet",
        [
            tx("T1", amount_minor=2000, fee_minor=200, tax_minor=20),
            tx("T3", amount_minor=0, fee_minor=0, tax_minor=0),  # S1's second, fully refunded sale
        ],
        s["transactions"],
    )
    # S2's sale was summed by the source ([source] aggregate = "source"): it counts the same
    write(run_dir, "extract/pushed_totals.parquet", [pushed("S2", 1000, 100, 10)], SOURCE_TOTALS_SCHEMA)
    # the source's own count per seller: what the extract and the aggregates hold
    write(run_dir, "extract/control_seller_counts.parquet", [counts("S1", 2), counts("S2", 1)], SELLER_COUNTS_SCHEMA)
    write(
        run_dir,
        "extract/refunds.parquet",
        [
            refund("R1", amount_minor=1000, fee_minor=100, tax_minor=10, refunded_at=AS_OF_END - timedelta(seconds=1)),
            refund("R2", amount_minor=500, fee_minor=50, tax_minor=5, refunded_at=AS_OF_END),
        ],
        s["refunds"],
    )


def stage_bad_aggregates(run_dir: Path) -> None:
    write(
        run_dir,
        "aggregate/activity_totals.parquet",
        [
            totals(None),  # row 1
            totals("A_NOQ", quarter=None),
            totals("A_Q0", quarter=0),
            totals("A_Q5", quarter=5),
            totals("A_NEGACT", activities=-1),
            totals("A_NEGTX", transactions=-1),
            totals("A_NEGREF", refunded_transactions=-1),
            totals("A_NEGFULL", fully_refunded_transactions=-1),
            totals("A_NEGDAYS", rented_days=-1),
            totals("A_NEGLATE", refunds_after_as_of=-1),
        ],
        ACTIVITY_TOTALS_SCHEMA,
    )
    write(
        run_dir,
        "rules/decisions.parquet",
        [
            decision(None),  # row 1
            decision("D_DUP"),
            decision("D_DUP", "excluded:listed"),
            decision("D_NONE", None),
            decision("D_BAD", "maybe"),
            decision("D_BADQ", "quarantined:"),  # a quarantine must name its rule
            decision("D_CASE", "Reported"),
        ],
        DECISION_SCHEMA,
    )
    # no aggregated seller has a decision: nothing of the extract is classified
    s = EXTRACT_SCHEMAS
    write(
        run_dir,
        "extract/transactions.parquet",
        [
            tx("T1", "A_NOQ"),
            tx("T2", "X_EXTRACT"),  # the source counts 3: two lost by the extract
            tx("T3", "X_CLASS"),
            tx("T4", "X_CLASS"),  # the aggregates count 1 of the 2
            tx("T5", "X_UNDATED"),
        ],
        s["transactions"],
    )
    write(run_dir, "extract/refunds.parquet", [], s["refunds"])
    write(run_dir, "extract/pushed_totals.parquet", [], SOURCE_TOTALS_SCHEMA)
    write(
        run_dir,
        "extract/control_seller_counts.parquet",
        # X_UNDATED also has a transaction without a usable paid_at, yet it is reported
        [counts("X_EXTRACT", 3), counts("X_CLASS", 2), counts("X_UNDATED", 1, undated=1)],
        SELLER_COUNTS_SCHEMA,
    )
    extra = [totals("X_EXTRACT", transactions=3), totals("X_CLASS"), totals("X_UNDATED")]
    table = pq.read_table(run_dir / "aggregate/activity_totals.parquet").to_pylist()
    write(run_dir, "aggregate/activity_totals.parquet", [*table, *extra], ACTIVITY_TOTALS_SCHEMA)
    decisions = pq.read_table(run_dir / "rules/decisions.parquet").to_pylist()
    write(run_dir, "rules/decisions.parquet", [*decisions, decision("X_UNDATED")], DECISION_SCHEMA)


# rule -> keys of the findings expected from the bad layouts (exactly these, nothing else)
NN = "gx.expect_column_values_to_not_be_null"
UNIQUE = "gx.expect_column_values_to_be_unique"
IN_SET = "gx.expect_column_values_to_be_in_set"
BETWEEN = "gx.expect_column_values_to_be_between"
TYPES = "gx.expect_column_values_to_be_in_type_list"
PAIR = "gx.expect_column_pair_values_a_to_be_greater_than_b"
EQUAL = "gx.expect_column_pair_values_to_be_equal"
ALL_ROWS = datachecks.TABLE_LEVEL_KEY

BAD: dict[str, dict[tuple[str, str], set[str]]] = {
    "extract": {
        ("sellers", f"{NN}.seller_id"): {"row 2"},
        ("sellers", f"{UNIQUE}.seller_id"): {"S_DUP"},
        ("transactions", f"{NN}.transaction_id"): {"row 4"},
        ("transactions", f"{UNIQUE}.transaction_id"): {"T_DUP"},
        ("transactions", f"{NN}.seller_id"): {"T_NOSELLER"},
        ("transactions", f"{NN}.activity"): {"T_NOACT"},
        ("transactions", f"{IN_SET}.activity"): {"T_BADACT"},
        ("transactions", f"{NN}.currency"): {"T_NOCUR"},
        ("transactions", f"{IN_SET}.currency"): {"T_BADCUR"},
        ("transactions", f"{NN}.fx_rate_currency"): {"T_BADCUR", "T_NORATE"},
        ("transactions", f"{NN}.amount_minor"): {"T_NOAMT"},
        ("transactions", f"{TYPES}.amount_minor"): {ALL_ROWS},
        ("transactions", f"{TYPES}.fee_minor"): {ALL_ROWS},
        ("transactions", f"{TYPES}.tax_minor"): {ALL_ROWS},
        ("transactions", f"{BETWEEN}.amount_minor"): {"T_NEGAMT"},
        ("transactions", f"{BETWEEN}.fee_minor"): {"T_NEGFEE"},
        ("transactions", f"{BETWEEN}.tax_minor"): {"T_NEGTAX"},
        ("transactions", f"{BETWEEN}.rented_days"): {"T_NEGDAYS"},
        ("transactions", f"{NN}.paid_at"): {"T_NOPAID"},
        ("transactions", f"{BETWEEN}.paid_at"): {"T_EARLY", "T_LATE", "T_FAR"},
        ("transactions", f"{NN}.listing_id"): {"T_NOLISTING"},
        ("transactions", "gx.expect_column_values_to_be_null.listing_id"): {"T_STRAYLISTING"},
        ("refunds", f"{NN}.refund_id"): {"row 1"},
        ("refunds", f"{UNIQUE}.refund_id"): {"R_DUP"},
        ("refunds", f"{NN}.transaction_id"): {"R_NOTX"},
        ("refunds", f"{NN}.refunded_transaction_id"): {"R_ORPHAN"},
        ("refunds", f"{NN}.refunded_at"): {"R_NOAT"},
        ("refunds", f"{NN}.amount_minor"): {"R_NOAMT"},
        ("refunds", f"{TYPES}.amount_minor"): {ALL_ROWS},
        ("refunds", f"{BETWEEN}.amount_minor"): {"R_NEGAMT"},
        ("refunds", f"{BETWEEN}.fee_minor"): {"R_NEGFEE"},
        ("refunds", f"{BETWEEN}.tax_minor"): {"R_NEGTAX"},
        ("refunds", f"{PAIR}.refunds_amount_minor"): {"R_OVER", "R_SPLIT1", "R_SPLIT2"},
        ("refunds", f"{PAIR}.refunds_fee_minor"): {"R_OVER"},
        ("refunds", f"{PAIR}.refunds_tax_minor"): {"R_OVER"},
        ("property_listings", f"{NN}.listing_id"): {"row 2"},
        ("property_listings", f"{UNIQUE}.listing_id"): {"L_DUP"},
        ("property_listings", f"{NN}.seller_id"): {"L_NOSELLER"},
        ("seller_tins", f"{NN}.seller_id"): {"row 1"},
        ("seller_tins", f"{NN}.issued_by"): {"row 2"},
        ("seller_tins", f"{IN_SET}.issued_by"): {"S1 ZZ"},
        ("seller_financial_accounts", f"{NN}.seller_id"): {"row 1"},
        ("seller_permanent_establishments", f"{NN}.seller_id"): {"row 1"},
        ("seller_permanent_establishments", f"{NN}.country"): {"row 2"},
        ("seller_permanent_establishments", f"{IN_SET}.country"): {"S1 QQ"},
        ("fx_rates", f"{NN}.currency"): {"row 1"},
        ("fx_rates", f"{NN}.rate_date"): {"row 2"},
        ("fx_rates", "gx.expect_compound_columns_to_be_unique.currency+rate_date"): {"PLN 2025-12-31"},
        ("fx_rates", f"{IN_SET}.currency"): {"ABC 2025-12-30"},
        ("control_counts", f"{EQUAL}.source_count"): {"transactions", "refunds"},
    },
    "identity": {
        ("sellers", f"{NN}.seller_type"): {"I_NOTYPE"},
        ("sellers", f"{IN_SET}.seller_type"): {"I_BADTYPE"},
        ("sellers", f"{NN}.first_name"): {"I_NOFIRST"},
        ("sellers", f"{NN}.last_name"): {"I_NOLAST"},
        ("sellers", f"{NN}.legal_name"): {"I_NOLEGAL"},
        ("sellers", f"{NN}.residence_country"): {"I_NORES"},
        ("sellers", f"{IN_SET}.residence_country"): {"I_BADRES"},
        ("sellers", f"{NN}.address_country"): {"I_NOADDR"},
        ("sellers", f"{IN_SET}.address_country"): {"I_BADADDR"},
        ("sellers", f"{BETWEEN}.birth_year"): {"I_OLD", "I_FUTURE"},
        ("sellers", f"{NN}.business_registration_number"): {"I_NOBRN"},
    },
    "aggregates": {
        ("activity_totals", f"{NN}.seller_id"): {"row 1"},
        ("activity_totals", f"{NN}.quarter"): {"row 2"},
        ("activity_totals", f"{BETWEEN}.quarter"): {"A_Q0 sale_of_goods EUR 0", "A_Q5 sale_of_goods EUR 5"},
        ("activity_totals", f"{BETWEEN}.activities"): {"A_NEGACT sale_of_goods EUR 1"},
        ("activity_totals", f"{BETWEEN}.transactions"): {"A_NEGTX sale_of_goods EUR 1"},
        ("activity_totals", f"{BETWEEN}.refunded_transactions"): {"A_NEGREF sale_of_goods EUR 1"},
        ("activity_totals", f"{BETWEEN}.fully_refunded_transactions"): {"A_NEGFULL sale_of_goods EUR 1"},
        ("activity_totals", f"{BETWEEN}.rented_days"): {"A_NEGDAYS sale_of_goods EUR 1"},
        ("activity_totals", f"{BETWEEN}.refunds_after_as_of"): {"A_NEGLATE sale_of_goods EUR 1"},
        ("decisions", f"{NN}.seller_id"): {"row 1"},
        ("decisions", f"{UNIQUE}.seller_id"): {"D_DUP"},
        ("decisions", f"{NN}.decision"): {"D_NONE"},
        ("decisions", "gx.expect_column_values_to_match_regex.decision"): {"D_BAD", "D_BADQ", "D_CASE"},
        ("reconciliation", f"{EQUAL}.classified_amount_minor"): {"EUR"},
        ("reconciliation", f"{EQUAL}.classified_fee_minor"): {"EUR"},
        ("reconciliation", f"{EQUAL}.classified_tax_minor"): {"EUR"},
        ("seller_reconciliation", f"{EQUAL}.extracted_transactions"): {"A_NOQ", "X_EXTRACT"},
        ("seller_reconciliation", f"{EQUAL}.classified_transactions"): {
            *("A_NOQ", "A_Q0", "A_Q5", "A_NEGACT", "A_NEGTX", "A_NEGREF", "A_NEGFULL", "A_NEGDAYS", "A_NEGLATE"),
            "X_CLASS",
        },
        ("seller_reconciliation", f"{IN_SET}.undated_not_quarantined"): {"X_UNDATED"},
    },
}
STAGERS = {
    "extract": (stage_good_extract, stage_bad_extract),
    "identity": (stage_good_identity, stage_bad_identity),
    "aggregates": (stage_good_aggregates, stage_bad_aggregates),
}
DOCS_STAGES = {"extract", "identity"}  # bad runs that also build Data Docs


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], DataCheckReport]:
    """One good and one bad run per stage."""
    out = {}
    for stage, (good, bad) in STAGERS.items():
        for quality, stager in (("good", good), ("bad", bad)):
            run_dir = tmp_path_factory.mktemp(f"{stage}-{quality}")
            stager(run_dir)
            docs = run_dir / "reports" / "data_docs" / stage if quality == "bad" and stage in DOCS_STAGES else None
            out[(stage, quality)] = run_data_checks(run_dir, stage, docs_dir=docs, **PERIOD)
    return out


def suite_rules(stage: str) -> list[tuple[str, str]]:
    out = []
    for t in load_suite(stage).tables:
        for e in t.expectations:
            column = datachecks._column(e["kwargs"])
            out.append((t.table, f"gx.{e['type']}.{column}"))
    return out


def cases() -> Iterable[Any]:
    for stage, expected in BAD.items():
        for (table, rule), keys in expected.items():
            yield pytest.param(stage, table, rule, keys, id=f"{stage}:{table}:{rule.removeprefix('gx.')}")


def by_rule(findings: list[Finding], table: str, rule: str) -> list[Finding]:
    return [f for f in findings if f.table == table and f.rule == rule]


# --- the suites --------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(datachecks.STAGES))
def test_every_expectation_has_a_bad_case(stage: str) -> None:
    rules_ = suite_rules(stage)
    assert len(rules_) == len(set(rules_)), "a rule must name one expectation of its table"
    assert set(rules_) == set(BAD[stage])


@pytest.mark.parametrize(("stage", "table", "rule", "keys"), list(cases()))
def test_expectation_fails_on_bad_input(
    reports: dict[tuple[str, str], DataCheckReport], stage: str, table: str, rule: str, keys: set[str]
) -> None:
    report = reports[(stage, "bad")]
    found = by_rule(report.findings, table, rule)
    assert {f.key for f in found} == keys
    summary = next(r for r in report.results if r.table == table and r.rule == rule)
    assert not summary.success
    assert all(f.message for f in found)


@pytest.mark.parametrize(("stage", "table", "rule", "keys"), list(cases()))
def test_expectation_passes_on_good_input(
    reports: dict[tuple[str, str], DataCheckReport], stage: str, table: str, rule: str, keys: set[str]
) -> None:
    report = reports[(stage, "good")]
    summary = next(r for r in report.results if r.table == table and r.rule == rule)
    assert summary.success
    assert summary.unexpected_count == 0
    assert not by_rule(report.findings, table, rule)


@pytest.mark.parametrize("stage", list(datachecks.STAGES))
def test_good_layout_passes(reports: dict[tuple[str, str], DataCheckReport], stage: str) -> None:
    report = reports[(stage, "good")]
    assert report.success
    assert report.findings == []
    assert not report.stops_run
    assert len(report.results) == len(suite_rules(stage))
    assert report.docs_index is None


@pytest.mark.parametrize("stage", list(datachecks.STAGES))
def test_bad_layout_fails_with_nothing_else(reports: dict[tuple[str, str], DataCheckReport], stage: str) -> None:
    report = reports[(stage, "bad")]
    assert not report.success
    assert report.stage == stage
    found = {(f.table, f.rule) for f in report.findings}
    assert found == set(BAD[stage])


def test_findings_name_the_seller_of_the_row(reports: dict[tuple[str, str], DataCheckReport]) -> None:
    extract = reports[("extract", "bad")]
    (orphan,) = by_rule(extract.findings, "refunds", f"{NN}.refunded_transaction_id")
    assert orphan.seller_id is None  # the transaction it names does not exist
    (over,) = by_rule(extract.findings, "refunds", f"{PAIR}.refunds_fee_minor")
    assert over.seller_id == "S1"  # the seller of the refunded transaction
    (nameless,) = by_rule(extract.findings, "seller_tins", f"{NN}.issued_by")
    assert (nameless.key, nameless.seller_id) == ("row 2", "S1")
    (rate,) = by_rule(extract.findings, "fx_rates", f"{IN_SET}.currency")
    assert rate.seller_id is None  # a rate belongs to no seller
    assert "S_DUP" not in extract.quarantined_sellers  # a duplicate key stops the run instead
    assert f"{BETWEEN}.amount_minor" in extract.quarantined_sellers["S1"]


def test_messages_say_what_to_do_and_show_only_codes(reports: dict[tuple[str, str], DataCheckReport]) -> None:
    extract = reports[("extract", "bad")]
    (activity,) = by_rule(extract.findings, "transactions", f"{IN_SET}.activity")
    assert "(value 'gambling')" in activity.message and "correct" in activity.message
    (currency,) = by_rule(extract.findings, "transactions", f"{IN_SET}.currency")
    assert "(value 'XAU')" in currency.message
    identity = reports[("identity", "bad")]
    (country,) = by_rule(identity.findings, "sellers", f"{IN_SET}.residence_country")
    assert "QQ" not in country.message  # not marked as a code to show
    for f in identity.findings:
        assert ("(value " in f.message) == (f.rule == f"{IN_SET}.seller_type")


def test_registration_number_is_a_warning(reports: dict[tuple[str, str], DataCheckReport]) -> None:
    identity = reports[("identity", "bad")]
    (brn,) = by_rule(identity.findings, "sellers", f"{NN}.business_registration_number")
    assert brn.severity is Severity.WARNING
    assert brn in identity.warnings and brn not in identity.errors
    assert "I_NOBRN" not in identity.quarantined_sellers
    assert identity.quarantined_sellers["I_OLD"] == [f"{BETWEEN}.birth_year"]
    summary = next(r for r in identity.results if r.rule == f"{NN}.business_registration_number")
    assert summary.severity is Severity.WARNING and not summary.success


def test_structural_failures_stop_the_run(reports: dict[tuple[str, str], DataCheckReport]) -> None:
    extract = reports[("extract", "bad")]
    assert extract.stops_run
    structural = {(f.table, f.rule) for f in extract.structural_findings}
    assert ("transactions", f"{UNIQUE}.transaction_id") in structural
    assert ("transactions", f"{BETWEEN}.paid_at") in structural  # a broken extract query
    assert ("transactions", f"{BETWEEN}.amount_minor") not in structural  # a row problem: quarantine
    assert not reports[("identity", "bad")].stops_run


def test_no_personal_value_in_findings_results_or_docs(reports: dict[tuple[str, str], DataCheckReport]) -> None:
    texts = []
    for (_, quality), report in reports.items():
        if quality != "bad":
            continue
        texts += [json.dumps(f.as_dict()) for f in report.findings]
        texts += [repr(r) for r in report.results]
        texts.append(repr(report))
        if report.docs_index is not None:
            texts += [
                p.read_text("utf-8", errors="replace") for p in report.docs_index.parent.rglob("*") if p.is_file()
            ]
    blob = "\n".join(texts)
    assert len(blob) > 10_000  # the Data Docs were read too
    for secret in SECRETS:
        assert secret not in blob, secret


@pytest.mark.parametrize("stage", sorted(DOCS_STAGES))
def test_data_docs_are_written(reports: dict[tuple[str, str], DataCheckReport], stage: str) -> None:
    report = reports[(stage, "bad")]
    assert report.docs_index is not None and report.docs_index.name == "index.html"
    html = report.docs_index.read_text("utf-8")
    assert "dac7." + stage in html
    pages = list((report.docs_index.parent / "validations").rglob("*.html"))
    assert len(pages) == len(load_suite(stage).tables)


# --- in chunks ---------------------------------------------------------------------------------

CHUNK = 3  # rows per chunk: every bad layout has tables of more rows


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DataCheckReport]:
    """Each stage's bad layout validated in chunks of CHUNK rows, with Data Docs."""
    out = {}
    for stage, (_, bad) in STAGERS.items():
        run_dir = tmp_path_factory.mktemp(f"{stage}-chunked")
        bad(run_dir)
        docs = run_dir / "reports" / "data_docs" / stage
        out[stage] = run_data_checks(run_dir, stage, docs_dir=docs, chunk_rows=CHUNK, **PERIOD)
    return out


@pytest.mark.parametrize("stage", list(datachecks.STAGES))
def test_chunks_find_the_same(
    reports: dict[tuple[str, str], DataCheckReport], chunked: dict[str, DataCheckReport], stage: str
) -> None:
    whole, parts = reports[(stage, "bad")], chunked[stage]
    assert max(r.element_count or 0 for r in parts.results) > CHUNK  # some table was chunked
    assert parts.findings == whole.findings  # keys, rules, sellers, messages, in the same order
    assert parts.results == whole.results  # success, counts of failed and of all rows
    assert (parts.success, parts.stops_run) == (whole.success, whole.stops_run)


@pytest.mark.parametrize("stage", list(datachecks.STAGES))
def test_chunks_keep_one_data_docs_page_per_table(chunked: dict[str, DataCheckReport], stage: str) -> None:
    index = chunked[stage].docs_index
    assert index is not None
    pages = list((index.parent / "validations").rglob("*.html"))
    assert len(pages) == len(load_suite(stage).tables)
    blob = "\n".join(p.read_text("utf-8", errors="replace") for p in index.parent.rglob("*") if p.is_file())
    for secret in SECRETS:
        assert secret not in blob, secret


def test_duplicate_key_in_two_chunks_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage_good_extract(tmp_path)
    rows = [tx("T_DUP"), *(tx(f"T{i}") for i in range(1, 5)), tx("T_DUP", "S2"), tx("T5"), tx("T6")]
    write(tmp_path, "extract/transactions.parquet", rows, EXTRACT_SCHEMAS["transactions"])
    chunks: list[set[int]] = []
    table_frames = datachecks.table_frames

    def spy(con: Any, t: Any, sql_params: Any, chunk_rows: int) -> Any:
        for frame, last in table_frames(con, t, sql_params, chunk_rows):
            if t.table == "transactions":
                chunks.append(set(frame.index))
            yield frame, last

    monkeypatch.setattr(datachecks, "table_frames", spy)
    report = run_data_checks(tmp_path, "extract", chunk_rows=2, **PERIOD)
    assert len(chunks) == 4 and not any({0, 5} <= c for c in chunks)  # the two rows in different chunks
    assert {(f.key, f.seller_id) for f in by_rule(report.findings, "transactions", f"{UNIQUE}.transaction_id")} == {
        ("T_DUP", "S1"),
        ("T_DUP", "S2"),
    }
    summary = next(r for r in report.results if r.rule == f"{UNIQUE}.transaction_id")
    assert (summary.success, summary.unexpected_count, summary.element_count) == (False, 2, 8)
    assert report.stops_run


def test_expectations_comparing_rows_run_on_the_whole_table() -> None:
    by = datachecks._partitioned_by
    assert by({"type": "expect_column_values_to_be_unique", "kwargs": {"column": "k"}}) == ("k",)
    assert by({"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "b"]}}) == ("a", "b")
    assert by({"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x", "min_value": 0}}) == ()
    assert by({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x", "mostly": 0.9}}) == ()
    assert by({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}) is None


# --- without Great Expectations ----------------------------------------------------------------


@pytest.mark.parametrize("table", ["transactions", "refunds", "fx_rates"])
def test_table_frames_give_every_row_once(tmp_path: Path, table: str) -> None:
    import pandas as pd

    stage_bad_extract(tmp_path)
    suite = load_suite("extract")
    t = next(t for t in suite.tables if t.table == table)
    sql_params = {"year_end": date(YEAR, 12, 31)}
    con = datachecks._connect(tmp_path, suite)
    try:
        ((whole, last),) = datachecks.table_frames(con, t, sql_params, 1_000)
        assert last
        for rows in (1, CHUNK):
            frames = list(datachecks.table_frames(con, t, sql_params, rows))
            assert [last for _, last in frames] == [False] * (len(frames) - 1) + [True]
            assert all(len(frame) <= rows for frame, _ in frames)
            together = pd.concat([frame.astype(object) for frame, _ in frames]).sort_index()
            pd.testing.assert_frame_equal(together, whole.astype(object).sort_index())  # rows keep their numbers
        with pytest.raises(ValueError, match="chunk_rows"):
            next(datachecks.table_frames(con, t, sql_params, 0))
    finally:
        con.close()


def test_missing_table_and_column_raise_before_any_check(tmp_path: Path) -> None:
    stage_good_extract(tmp_path)
    (tmp_path / "extract" / "refunds.parquet").unlink()
    sellers = pq.read_table(tmp_path / "extract" / "sellers.parquet").drop_columns(["seller_id"])
    pq.write_table(sellers, tmp_path / "extract" / "sellers.parquet")
    with pytest.raises(DataCheckStructureError) as e:
        run_data_checks(tmp_path, "extract", **PERIOD)
    found = {(f.rule, f.table, f.key) for f in e.value.findings}
    assert found == {
        ("gx.structure.missing_table", "refunds", "extract/refunds.parquet"),
        ("gx.structure.missing_column", "sellers", "seller_id"),
    }


def test_unknown_stage(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown data-check stage"):
        run_data_checks(tmp_path, "render", **PERIOD)


def test_parameters_accept_aware_bounds() -> None:
    cet = timezone(timedelta(hours=1))
    params = datachecks.expectation_parameters(
        as_of_end_utc=datetime(2026, 1, 1, 0, 30, tzinfo=cet),
        period_start_utc=datetime(2025, 1, 1, tzinfo=cet),
        period_end_utc=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert params["period_start_utc"] == datetime(2024, 12, 31, 23, 0)
    assert params["period_end_utc"] == datetime(2026, 1, 1)
    assert params["max_birth_year"] == 2025  # 2025-12-31 23:30 UTC
    assert "EUR" in params["payment_currencies"] and "XAU" not in params["payment_currencies"]


def test_report_success_ignores_warnings() -> None:
    warning = ExpectationSummary("sellers", "expect_column_values_to_not_be_null", "x", False, 1, 1, Severity.WARNING)
    error = replace(warning, severity=Severity.ERROR)
    assert DataCheckReport("identity", True, [warning], []).stops_run is False
    report = DataCheckReport("identity", False, [warning, replace(error, structural=True)], [])
    assert report.stops_run


def test_great_expectations_is_not_imported_by_the_module() -> None:
    import subprocess
    import sys

    code = "import sys, reporting.checks.data; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_great_expectations_imports_in_a_process_of_python_c() -> None:
    """With pyspark installed, Great Expectations imports Spark Connect, which ends a process
    whose ``__main__`` has no ``__file__`` (``python -c``) halfway through the import unless
    ``_import_gx`` lends it one: the process goes on, and its ``__main__`` is as it was."""
    import subprocess
    import sys

    code = (
        "import sys; from reporting.checks.data import _import_gx; _import_gx(); "
        "from great_expectations.core.run_identifier import RunIdentifier; "
        "print('imported', hasattr(sys.modules['__main__'], '__file__'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "imported False"


# ---------------------------------------------------------------------------------- the worker


def test_the_worker_gives_what_the_stage_s_own_process_gives(
    tmp_path: Path, reports: dict[tuple[str, str], DataCheckReport], caplog: pytest.LogCaptureFixture
) -> None:
    """Each stage's bad and good layouts through one worker: the same report, finding for
    finding, and the worker's log lines handled here."""
    with ChecksWorker() as worker:
        for (stage, quality), expected in reports.items():
            run_dir = tmp_path / f"{stage}-{quality}"
            STAGERS[stage][quality == "bad"](run_dir)
            arguments = {"run_dir": run_dir, "stage": stage, "docs_dir": None} | PERIOD
            with caplog.at_level("INFO", logger="reporting.checks.data"):  # the level the worker keeps
                worker.submit(stage, arguments)
                done = worker.collect(stage, arguments)
            assert done is not None, (stage, quality)
            report, seconds = done
            assert seconds > 0
            assert report.findings == expected.findings
            assert report.results == expected.results
            assert (report.success, report.stops_run) == (expected.success, expected.stops_run)
            assert any(r.message.startswith(f"data checks {stage}:") for r in caplog.records)
            caplog.clear()


def test_a_failure_in_the_worker_leaves_the_checks_to_the_stage_s_process(tmp_path: Path) -> None:
    """The worker cannot pass every exception on as it was: it says it failed, and the stage's
    process runs the checks itself (``audit`` then raises what they raise)."""
    stage_good_extract(tmp_path)
    (tmp_path / "extract" / "refunds.parquet").unlink()
    arguments = {"run_dir": tmp_path, "stage": "extract", "docs_dir": None} | PERIOD
    with ChecksWorker() as worker:
        assert worker.collect("extract", arguments) is None
        stage_good_extract(tmp_path)
        assert worker.collect("extract", arguments) is None  # stopped: this process checks from now on


def test_a_worker_that_is_gone_leaves_the_checks_to_the_stage_s_process(tmp_path: Path) -> None:
    stage_good_extract(tmp_path)
    arguments = {"run_dir": tmp_path, "stage": "extract", "docs_dir": None} | PERIOD
    worker = ChecksWorker()
    assert worker._worker is not None and worker._worker._proc is not None
    worker._worker._proc.kill()
    worker._worker._proc.wait()
    worker.submit("extract", arguments)
    assert worker.collect("extract", arguments) is None
    worker.close()


@pytest.mark.parametrize(
    ("env", "imported", "started"), [("0", False, False), ("1", True, True), ("", True, False), ("", False, True)]
)
def test_a_worker_is_started_where_it_saves_the_import(
    monkeypatch: pytest.MonkeyPatch, env: str, imported: bool, started: bool
) -> None:
    import sys

    monkeypatch.setenv(datachecks.WORKER_ENV, env)
    modules = dict(sys.modules)
    if imported:
        modules.setdefault("great_expectations", sys.modules.get("great_expectations") or object())
    else:
        modules.pop("great_expectations", None)
    monkeypatch.setattr(sys, "modules", modules)
    monkeypatch.setattr(datachecks.ChecksWorker, "__init__", lambda self: setattr(self, "_worker", object()))
    assert (datachecks.ChecksWorker.start() is not None) is started


def test_one_worker_serves_every_stage_of_a_run_in_one_process(
    tmp_path: Path, reports: dict[tuple[str, str], DataCheckReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within ``keep_checks_worker`` (``dac7 run``, ``dac7 bench``) the worker a stage closes is
    the one the next stage starts: Great Expectations imported once. Its reports are those of a
    worker of its own; it ends when the run leaves the scope, and its CPU is counted meanwhile."""
    monkeypatch.setenv(datachecks.WORKER_ENV, "1")  # this test session has imported it already
    pids = []
    with datachecks.keep_checks_worker():
        for stage in ("extract", "aggregates"):
            run_dir = tmp_path / stage
            STAGERS[stage][False](run_dir)
            arguments = {"run_dir": run_dir, "stage": stage, "docs_dir": None} | PERIOD
            worker = ChecksWorker.start()
            assert worker is not None and worker._worker is not None
            pids.append(worker._worker.pid)
            done = worker.collect(stage, arguments)
            assert done is not None and done[0].findings == reports[(stage, "good")].findings
            worker.close()
            assert datachecks.checks_worker_cpu() > 0  # the import, at least
        kept = datachecks._kept
        assert kept is not None and kept._worker is not None
        process = kept._worker._proc
    assert pids[0] == pids[1]
    assert process is not None and process.returncode is not None  # ended on leaving
    assert datachecks._kept is None and not datachecks._running and datachecks.checks_worker_cpu() == 0


class _FakeWorker:
    """Stands for a worker process in the tests of what is kept (no interpreter started)."""

    def __init__(self) -> None:
        self.pid, self.unread, self.closed, self.running = 1, 0, False, True

    def send(self, fn: object, *args: object) -> None:
        self.unread += 1

    def alive(self) -> bool:
        return self.running and not self.closed

    def close(self, *, wait: bool = True) -> None:
        self.closed = True


@pytest.mark.parametrize("case", ["outside", "pending", "dead"])
def test_a_worker_is_kept_only_idle_alive_and_within_the_scope(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """Outside ``keep_checks_worker`` a closed worker ends; within it, one with checks submitted and
    not collected (a stage that failed midway) ends, and one that died is replaced by a new one."""
    monkeypatch.setenv(datachecks.WORKER_ENV, "1")
    monkeypatch.setattr(datachecks, "Worker", _FakeWorker)
    monkeypatch.setattr(datachecks, "_running", set())
    scope = contextlib.nullcontext() if case == "outside" else datachecks.keep_checks_worker()
    with scope:
        worker = ChecksWorker.start()
        assert worker is not None
        fake = worker._worker
        assert isinstance(fake, _FakeWorker)
        if case == "pending":
            worker.submit("extract", {"run_dir": "x"})
        worker.close()
        if case == "dead":
            assert not fake.closed and datachecks._kept is worker
            fake.running = False
            again = ChecksWorker.start()
            assert again is not None and again is not worker and fake.closed
            again.close()
        else:
            assert fake.closed and datachecks._kept is None
    assert datachecks._kept is None
