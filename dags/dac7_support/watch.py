"""The quarterly threshold watch list: sellers whose sales of goods crossed, or come within 20% of,
the de minimis limits (30 sales, EUR 2,000) while due diligence still lists something to do for
them (incomplete data, a TIN to obtain or verify, a quarantine ...). The limits are read as the
filing state's law reads them (the ``reading`` of each decision): under the German reading a
seller at exactly EUR 2,000.00 has crossed (``weniger als 2 000 Euro``), under the EU wording it
has not ("did not exceed"). A filing with HMRC reads them as the UK does, in euros and "did not
exceed" (HMRC IEIM901630: fewer than 30 sales, consideration not more than 2000 euros, both
tests; the ``GB`` reading of ``reporting.variants``, which says why): a GB seller at exactly
EUR 2,000.00 is near, not over. In a group, each operator's list is read with its own filing's
reading, in its own folder.

Read from what a (test) run publishes: ``reports/decisions.csv`` (``goods_activities``,
``goods_eur``) and ``reports/due_diligence.csv``. Seller ids only, no personal data.
"""

from __future__ import annotations

import csv
import io
import os
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

COLUMNS = ("seller_id", "threshold", "goods_sales", "goods_eur", "decision", "due_diligence")
NEAR = Fraction(4, 5)  # within 20% of a limit: at least 80% of it


#: sales below which a seller is not near the sales limit (80% of the 30th sale: 24), and an amount
#: (as ``goods_eur`` shows it, rounded to 4 decimals) clearly below 80% of EUR 2,000: one euro of
#: margin covers the rounding and the reading of the text as a float many times over
FAR_SALES = 24
FAR_EUR = 1599.0


def far_below(sales: int, goods_eur: str, goods_eur_exact: str | None = None) -> bool:
    """Whether a seller is surely neither over nor within 20% of the limits, from its sales and the
    rounded ``goods_eur`` alone: fewer than :data:`FAR_SALES` sales and under :data:`FAR_EUR`
    (no amount at all, neither rounded nor exact: EUR 0). Every reading's amount test passes
    below EUR 2,000, so the exact value (a ``Fraction`` read from ``goods_eur_exact``, the watch
    list's costliest step for the many small sellers) is not needed there; any other seller is
    judged exactly as before (and so is an amount that is no number)."""
    if sales >= FAR_SALES:
        return False
    if goods_eur:
        try:
            return float(goods_eur) < FAR_EUR
        except ValueError:  # a text that is no number: judged exactly, as before
            return False
    return not goods_eur_exact


def watch_rows(decisions_csv: Path, due_diligence_csv: Path) -> list[dict[str, str]]:
    """The watch list, one row per seller, ordered by seller id."""
    from reporting.rules import DE_MINIMIS_MAX_EUR, DE_MINIMIS_MAX_SALES, amount_under_limit
    from reporting.variants import variant_of

    sales_limit = DE_MINIMIS_MAX_SALES + 1  # "fewer than 30" sales: the 30th crosses
    with due_diligence_csv.open(encoding="utf-8", newline="") as fh:
        kinds: dict[str, dict[str, None]] = {}
        for r in csv.DictReader(fh):
            kinds.setdefault(r["seller_id"], {})[r["kind"]] = None
    rows = []
    with decisions_csv.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            sales = int(r["goods_activities"] or 0)
            if far_below(sales, r["goods_eur"], r.get("goods_eur_exact")):
                continue  # neither crossed nor near, whatever the exact value and the reading
            # the exact value the rules compared (goods_eur is rounded to 4 decimals for people)
            if r.get("goods_eur_exact"):
                eur = Fraction(r["goods_eur_exact"])
            else:
                eur = Fraction(Decimal(r["goods_eur"])) if r["goods_eur"] else Fraction(0)
            # the reading that decided the seller (the filing state's): under the German one,
            # exactly EUR 2,000.00 is no longer "weniger als 2 000 Euro" and has crossed
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


def write_watch_list(out_dir: str | Path, target: str | Path) -> dict[str, Any]:
    """Write ``target`` (CSV, atomically, readable by the owner only) from the reports in
    ``out_dir``; returns the counts."""
    from reporting.private import private_dirs
    from reporting.reports import csvcells

    reports = Path(out_dir) / "reports"
    rows = watch_rows(reports / "decisions.csv", reports / "due_diligence.csv")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(map(csvcells.row, rows))  # no cell read as a formula
    target = Path(target)
    private_dirs(target.parent)
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, target)
    return {
        "sellers": len(rows),
        "crossed": sum(r["threshold"] == "crossed" for r in rows),
        "near": sum(r["threshold"] != "crossed" for r in rows),
        "file": str(target),
    }
