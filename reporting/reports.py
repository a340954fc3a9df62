"""The explanation of a run for people: one row per seller, and the figures behind it.

Written next to the XML, under ``<out>/reports/``, as Parquet and as CSV (for a spreadsheet):

- ``decisions``: per seller the reason code, a plain sentence with the numbers it rests on, the
  residence states and why, the receiving authorities, the reporting currency and the rates
  used, the counted and refunded transactions;
- ``figures``: per seller, activity, property listing, quarter and currency, the original
  totals (minor units, after refunds), the transactions counted and refunded, and the figures
  as reported for that activity and quarter.

Neither holds personal data: sellers are named by their seller_id only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reporting.run import RunSettings
from reporting.staging import connect, sql_literal

DECISIONS_SQL = """
with tx as (
    select
        seller_id,
        sum(transactions)::bigint as transactions,
        sum(refunded_transactions)::bigint as refunded_transactions,
        sum(fully_refunded_transactions)::bigint as fully_refunded_transactions
    from activity_totals
    group by seller_id
)

select
    d.seller_id,
    d.seller_type,
    d.decision,
    d.explanation,
    array_to_string(d.authorities, ';') as authorities,
    array_to_string(d.residence_countries, ';') as residence_countries,
    array_to_string(d.residence_reasons, '; ') as residence_reasons,
    d.currency as reported_currency,
    d.converted,
    d.rates,
    d.goods_activities,
    d.goods_eur,
    array_to_string(d.excluded_listings, ';') as excluded_listings,
    tx.transactions,
    tx.refunded_transactions,
    tx.fully_refunded_transactions
from decisions as d
left join tx on tx.seller_id = d.seller_id
order by d.seller_id
"""

FIGURES_SQL = """
select
    a.seller_id,
    d.decision,
    a.activity,
    nullif(a.listing_id, '') as listing_id,
    a.quarter,
    a.currency,
    a.rate_date,
    a.units_per_eur,
    a.transactions,
    a.refunded_transactions,
    a.fully_refunded_transactions,
    a.activities as counted_activities,
    a.gross_amount_minor,
    a.refunded_amount_minor,
    a.amount_minor as consideration_minor,
    a.fee_minor,
    a.tax_minor,
    a.rented_days,
    r.currency as reported_currency,
    [r.cons_q1, r.cons_q2, r.cons_q3, r.cons_q4][a.quarter] as reported_consideration,
    [r.numb_q1, r.numb_q2, r.numb_q3, r.numb_q4][a.quarter] as reported_activities,
    [r.fees_q1, r.fees_q2, r.fees_q3, r.fees_q4][a.quarter] as reported_fees,
    [r.tax_q1, r.tax_q2, r.tax_q3, r.tax_q4][a.quarter] as reported_taxes,
    list_contains(d.excluded_listings, a.listing_id) as listing_excluded
from activity_totals as a
inner join decisions as d on d.seller_id = a.seller_id
left join reported as r
    on r.seller_id = a.seller_id and r.activity = a.activity and r.listing_id = a.listing_id
order by a.seller_id, a.activity, a.listing_id, a.quarter, a.currency, a.rate_date
"""


def write_reports(settings: RunSettings, out_dir: Path) -> dict[str, Any]:
    """Write ``reports/decisions`` and ``reports/figures`` (Parquet and CSV) atomically."""
    reports = out_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    con = connect(settings.run_path, "aggregate", "rules")
    written = []
    try:
        for name, sql in (("decisions", DECISIONS_SQL), ("figures", FIGURES_SQL)):
            for fmt, options in (("parquet", "format parquet, compression zstd"), ("csv", "format csv, header")):
                target = reports / f"{name}.{fmt}"
                tmp = reports / f".{name}.{fmt}.tmp"
                con.execute(f"copy ({sql}) to {sql_literal(tmp)} ({options})")
                tmp.chmod(0o600)
                tmp.replace(target)
                written.append(f"reports/{name}.{fmt}")
    finally:
        con.close()
    return {"reports": written}
