"""The watch list's screen of the sellers far below the limits (``dac7_support.watch.far_below``)
changes no row: the watch list is the one the exact test of every seller gives.

Hand-computed cases at the edges of the screen, then a property: decisions of every kind (sales
around 24 and 30, amounts around EUR 1,599, 1,600 and 2,000 as the rules write them: the exact
value as a fraction and the same rounded to 4 decimals, or no amount at all) under the EU and
the German readings, read by :func:`watch_rows` and by the implementation before the screen
(kept below as the reference), give the same rows.
"""

from __future__ import annotations

import csv
import os
import sys
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DAGS = str(Path(__file__).resolve().parents[2] / "dags")
if DAGS not in sys.path:
    sys.path.insert(0, DAGS)

from dac7_support.watch import FAR_EUR, FAR_SALES, NEAR, far_below, watch_rows  # noqa: E402

from reporting.rules import DE_MINIMIS_MAX_EUR, DE_MINIMIS_MAX_SALES, amount_under_limit  # noqa: E402
from reporting.variants import variant_of  # noqa: E402

EXAMPLES = int(os.environ.get("DAC7_FUZZ_EXAMPLES", "300"))


def reference_rows(decisions_csv: Path, due_diligence_csv: Path) -> list[dict[str, str]]:
    """``watch_rows`` as it was before the screen: every seller's exact value read and tested."""
    sales_limit = DE_MINIMIS_MAX_SALES + 1
    with due_diligence_csv.open(encoding="utf-8", newline="") as fh:
        kinds: dict[str, dict[str, None]] = {}
        for r in csv.DictReader(fh):
            kinds.setdefault(r["seller_id"], {})[r["kind"]] = None
    rows = []
    with decisions_csv.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            sales = int(r["goods_activities"] or 0)
            if r.get("goods_eur_exact"):
                eur = Fraction(r["goods_eur_exact"])
            else:
                eur = Fraction(Decimal(r["goods_eur"])) if r["goods_eur"] else Fraction(0)
            reading = variant_of(r.get("reading") or "")
            crossed = sales >= sales_limit or not amount_under_limit(eur, reading)
            near = sales >= NEAR * sales_limit or eur >= NEAR * DE_MINIMIS_MAX_EUR
            if not (crossed or near) or r["seller_id"] not in kinds:
                continue
            rows.append(
                {
                    "seller_id": r["seller_id"],
                    "threshold": "crossed" if crossed else "within 20%",
                    "goods_sales": str(sales),
                    "goods_eur": r["goods_eur"],
                    "decision": r["decision"],
                    "due_diligence": "; ".join(kinds[r["seller_id"]]),
                }
            )
    return sorted(rows, key=lambda row: row["seller_id"])


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _decision(seller: str, sales: int, exact: Fraction | None, reading: str) -> dict[str, str]:
    """A row of ``decisions.csv`` as the rules write it: the rounded amount beside the exact one."""
    rounded = "" if exact is None else str(Decimal(exact.numerator) / Decimal(exact.denominator))
    if exact is not None:
        rounded = str(Decimal(rounded).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
    return {
        "seller_id": seller,
        "decision": "not_reportable",
        "goods_activities": str(sales),
        "goods_eur": rounded,
        "goods_eur_exact": "" if exact is None else str(exact),
        "reading": reading,
    }


def test_the_screen_follows_the_limits() -> None:
    # 80% of the 30th sale and of EUR 2,000, with a euro of margin below the latter
    assert FAR_SALES == NEAR * (DE_MINIMIS_MAX_SALES + 1) == 24
    margin = NEAR * DE_MINIMIS_MAX_EUR - Fraction(FAR_EUR)
    assert margin >= 1


@pytest.mark.parametrize(
    ("sales", "goods_eur", "exact", "far"),
    [
        (0, "", "", True),  # no sales of goods, no amount: EUR 0
        (23, "1598.9999", "15989999/10000", True),  # below both
        (24, "0.0000", "0", False),  # 24 sales: near the sales limit
        (23, "1599.0000", "1599", False),  # not clearly below EUR 1,600: judged exactly
        (23, "1600.0000", "1600", False),
        (2, "2000.0100", "200001/100", False),
        (1, "", "1700", False),  # an exact amount without the rounded one: judged exactly
        (1, "-5.0000", "-5", True),  # refunds over the sales: below
        (1, "n/a", "", False),  # no number: judged exactly, as before
    ],
)
def test_far_below(sales: int, goods_eur: str, exact: str, far: bool) -> None:
    assert far_below(sales, goods_eur, exact) is far


AMOUNTS = st.one_of(
    st.none(),
    st.sampled_from([Fraction(0), Fraction(1599), Fraction(1600), Fraction(2000), Fraction(-3)]),
    # around the screen's edge and the limits, to the rules' exactness (fractions of a cent)
    st.builds(
        lambda base, off, den: Fraction(base) + Fraction(off, den),
        st.sampled_from([0, 1598, 1599, 1600, 1999, 2000, 5000]),
        st.integers(-20_000, 20_000),
        st.sampled_from([1, 100, 10_000, 30_000, 7_919]),
    ),
)
SELLERS = st.lists(
    st.tuples(
        st.integers(0, 40),
        AMOUNTS,
        st.sampled_from(["EU", "DE", "GB", ""]),
        st.booleans(),  # due diligence lists something for the seller
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sellers=SELLERS)
def test_watch_rows_are_those_of_the_exact_test(tmp_path: Path, sellers: list[tuple[Any, ...]]) -> None:
    decisions = [_decision(f"S{i:03d}", s, eur, r) for i, (s, eur, r, _) in enumerate(sellers)]
    diligence = [{"seller_id": f"S{i:03d}", "kind": "TIN unknown"} for i, (*_, open_) in enumerate(sellers) if open_]
    decisions_csv = _write(tmp_path / "decisions.csv", decisions)
    diligence_csv = _write(tmp_path / "due_diligence.csv", diligence or [{"seller_id": "none", "kind": "x"}])
    assert watch_rows(decisions_csv, diligence_csv) == reference_rows(decisions_csv, diligence_csv)
