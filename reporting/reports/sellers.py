"""The explanation of a run for people: one row per seller, and the figures behind it.

Written next to the XML, under ``<out>/reports/``, as Parquet and as CSV (for a spreadsheet):

- ``decisions``: per seller the reason code, a plain sentence with the numbers it rests on, the
  residence states and why, the receiving authorities, the reading of the rules that decided (the
  filing state's), the states the filing state forwards the seller to and why, the reporting
  currency and the rates used, the counted and refunded transactions;
- ``figures``: per seller, activity, property listing, quarter and currency, the original
  totals (minor units, after refunds), the transactions counted and refunded (and the refunds
  after the as-of date, which are not applied), the reason code of the row (an excluded
  listing, the non-EU part of a non-EU seller ...), and the figures as reported for that
  activity and quarter (on the first row of the quarter only, so that sums do not double).

Neither holds personal data: sellers are named by their seller_id only.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from reporting.jurisdictions import rule_set_for
from reporting.private import private_dirs
from reporting.reports import csvcells
from reporting.results import SellerReports
from reporting.settings import RunSettings
from reporting.staging import connect, sql_literal

DECISIONS_SQL = """
with tx as (
    select
        seller_id,
        sum(transactions)::bigint as transactions,
        sum(refunded_transactions)::bigint as refunded_transactions,
        sum(fully_refunded_transactions)::bigint as fully_refunded_transactions,
        sum(refunds_after_as_of)::bigint as refunds_after_as_of
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
    d.goods_eur_exact,
    array_to_string(d.excluded_listings, ';') as excluded_listings,
    d.goods_part_excluded,
    d.reading,
    d.reading_label,
    array_to_string(d.exchange_states, ';') as exchange_states,
    array_to_string(d.exchange_reasons, '; ') as exchange_reasons,
    tx.transactions,
    tx.refunded_transactions,
    tx.fully_refunded_transactions,
    tx.refunds_after_as_of
from decisions as d
left join tx on tx.seller_id = d.seller_id
order by d.seller_id
"""

FIGURES_SQL = """
with rows as (
    select
        a.*,
        d.decision as seller_decision,
        d.excluded_listings,
        d.goods_part_excluded,
        sum(a.amount_minor) over (partition by a.seller_id, a.activity, a.listing_id) as group_amount,
        sum(a.activities) over (partition by a.seller_id, a.activity, a.listing_id) as group_activities,
        row_number() over (
            partition by a.seller_id, a.activity, a.listing_id, a.quarter order by a.currency, a.rate_date
        ) as nth_in_quarter
    from activity_totals as a
    inner join decisions as d on d.seller_id = a.seller_id
)

select
    x.seller_id,
    x.seller_decision,
    case
        when list_contains(x.excluded_listings, x.listing_id) then 'excluded_listing:over_2000_rentals'
        when x.seller_decision <> 'reported' then x.seller_decision
        -- a reading that exempts the goods part of a mixed seller only (PStTG § 4(5))
        when x.activity = 'sale_of_goods' and x.goods_part_excluded then 'excluded:de_minimis'
        when r.seller_id is not null then 'reported'
        when x.group_amount = 0 and x.group_activities = 0 then 'not_reportable:no_activity'
        else '{not_reportable}'
    end as row_decision,
    x.activity,
    nullif(x.listing_id, '') as listing_id,
    x.quarter,
    x.currency,
    x.rate_date,
    x.units_per_eur,
    x.transactions,
    x.refunded_transactions,
    x.fully_refunded_transactions,
    x.activities as counted_activities,
    x.gross_amount_minor,
    x.refunded_amount_minor,
    x.amount_minor as consideration_minor,
    x.fee_minor,
    x.tax_minor,
    x.rented_days,
    x.refunds_after_as_of,
    x.refunded_after_as_of_minor,
    -- the reported figure of the activity and quarter, on its first row only (no double counting)
    case when x.nth_in_quarter = 1 then r.currency end as reported_currency,
    case when x.nth_in_quarter = 1 then [r.cons_q1, r.cons_q2, r.cons_q3, r.cons_q4][x.quarter] end
        as reported_consideration,
    case when x.nth_in_quarter = 1 then [r.numb_q1, r.numb_q2, r.numb_q3, r.numb_q4][x.quarter] end
        as reported_activities,
    case when x.nth_in_quarter = 1 then [r.fees_q1, r.fees_q2, r.fees_q3, r.fees_q4][x.quarter] end
        as reported_fees,
    case when x.nth_in_quarter = 1 then [r.tax_q1, r.tax_q2, r.tax_q3, r.tax_q4][x.quarter] end
        as reported_taxes
from rows as x
left join reported as r
    on r.seller_id = x.seller_id and r.activity = x.activity and r.listing_id = x.listing_id
order by x.seller_id, x.activity, x.listing_id, x.quarter, x.currency, x.rate_date
"""


QUARANTINE_SQL = """
select seller_id, rule, "table", key, message
from read_parquet([{files}])
order by seller_id, rule, key
"""


def write_reports(settings: RunSettings, out_dir: Path) -> SellerReports:
    """Write ``reports/decisions`` and ``reports/figures`` (Parquet and CSV) atomically."""
    reports = private_dirs(out_dir / "reports")
    con = connect(settings.run_path, "aggregate", "rules")
    written = []
    try:
        # a row of a reported seller's activity that is not reported: outside the rule set's area
        not_reportable = rule_set_for(settings.config.operator.country).not_reportable
        figures = FIGURES_SQL.replace("{not_reportable}", not_reportable)
        for name, sql in (("decisions", DECISIONS_SQL), ("figures", figures)):
            for fmt, options in (("parquet", "format parquet, compression zstd"), ("csv", "format csv, header")):
                target = reports / f"{name}.{fmt}"
                tmp = reports / f".{name}.{fmt}.tmp"
                query = sql
                if fmt == "csv":  # the rows of the Parquet just written; no cell read as a formula
                    query = csvcells.select(con, same_rows(con, sql, reports / f"{name}.parquet"))
                con.execute(f"copy ({query}) to {sql_literal(tmp)} ({options})")
                tmp.chmod(0o600)
                tmp.replace(target)
                written.append(f"reports/{name}.{fmt}")
        files = [
            p
            for p in (
                settings.run_path / "extract" / "quarantine_extract.parquet",
                settings.run_path / "rules" / "quarantine_rules.parquet",
            )
            if p.is_file()
        ]
        if files:
            # every quarantined seller with its reasons: keys and rules only, what to correct
            target, tmp = reports / "quarantine.csv", reports / ".quarantine.csv.tmp"
            sql = QUARANTINE_SQL.format(files=", ".join(sql_literal(p) for p in files))
            con.execute(f"copy ({csvcells.select(con, sql)}) to {sql_literal(tmp)} (format csv, header)")
            tmp.chmod(0o600)
            tmp.replace(target)
            written.append("reports/quarantine.csv")
    finally:
        con.close()
    return {"reports": written}


def same_rows(con: duckdb.DuckDBPyConnection, sql: str, parquet: Path) -> str:
    """The rows of ``sql`` for its CSV: read back from ``parquet``, the query's own rows written just
    before, where every column reads back with the query's type (the same CSV, byte for byte,
    without running the query a second time: 0.2 CPU seconds of the figures' query at 886,724
    transactions); else ``sql`` itself."""
    written = f"select * from read_parquet({sql_literal(parquet)})"
    query, back = con.sql(sql), con.sql(written)
    if query.columns == back.columns and query.types == back.types:
        return written
    return sql
