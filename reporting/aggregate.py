"""Aggregate: per seller, activity, property listing, currency and quarter, after refunds.

Runs in DuckDB over the staged Parquet files, so tens of millions of transactions never become
Python objects. Quarters come from comparing the UTC payment time with the UTC instants of the
local quarter starts (see :mod:`reporting.period`). A refund applies to its transaction's
quarter when it was refunded before the end of the as-of day (local time).
"""

from __future__ import annotations

import logging
from typing import Any

from reporting.run import RunSettings, write_json
from reporting.staging import connect, register_local_days, sql_literal

log = logging.getLogger(__name__)

# A DAC7 Property Listing is every unit at the same street address offered by the same seller:
# listings of one seller whose normalised address is identical are one listing, keyed by the
# smallest listing_id among them. Normalised per part: case-folded, white space and punctuation
# removed ("Pilies g. 3A" = "pilies g 3 a"). A listing without a street is never merged: without
# a street there is no "same street address" to establish.
LISTING_KEYS_SQL = """
with normalised as (
    select
        listing_id,
        seller_id,
        nullif(regexp_replace(lower(coalesce(address_street, '')), '[[:space:][:punct:]]+', '', 'g'), '')
            as street_key,
        concat_ws('|',
            upper(trim(coalesce(address_country, ''))),
            regexp_replace(lower(coalesce(address_post_code, '')), '[[:space:][:punct:]]+', '', 'g'),
            regexp_replace(lower(coalesce(address_city, '')), '[[:space:][:punct:]]+', '', 'g'),
            regexp_replace(lower(coalesce(address_street, '')), '[[:space:][:punct:]]+', '', 'g'),
            regexp_replace(lower(coalesce(address_building, '')), '[[:space:][:punct:]]+', '', 'g')
        ) as address_key
    from property_listings
),

keyed as (
    select
        listing_id,
        seller_id,
        case when street_key is null then listing_id else address_key end as merge_key
    from normalised
)

select
    listing_id,
    min(listing_id) over (partition by seller_id, merge_key) as listing_key,
    count(*) over (partition by seller_id, merge_key) as units
from keyed
"""

AGGREGATE_SQL = """
with applied_refunds as (
    select
        transaction_id,
        sum(amount_minor) as amount_minor,
        sum(coalesce(fee_minor, 0)) as fee_minor,
        sum(coalesce(tax_minor, 0)) as tax_minor,
        count(*) as refunds
    from refunds
    where refunded_at < $as_of_end
    group by transaction_id
),

rated as (
    -- the local payment date, and the rate of that day (the last published on or before it)
    select t.*, d.local_date, f.rate_date, f.units_per_eur
    from transactions as t
    asof left join local_days as d on t.paid_at >= d.utc_start
    asof left join fx_rates as f on f.currency = t.currency and d.local_date >= f.rate_date
),

late_refunds as (
    -- refunds after the as-of date: not applied, but shown in the explanation
    select transaction_id, count(*) as refunds, sum(amount_minor) as amount_minor
    from refunds
    where refunded_at >= $as_of_end
    group by transaction_id
),

net as (
    select
        t.seller_id,
        t.activity,
        coalesce(k.listing_key, t.listing_id, '') as listing_id,
        t.currency,
        case
            when t.paid_at >= $q4 then 4
            when t.paid_at >= $q3 then 3
            when t.paid_at >= $q2 then 2
            else 1
        end as quarter,
        t.amount_minor as gross_amount_minor,
        coalesce(r.amount_minor, 0) as refunded_amount_minor,
        t.amount_minor - coalesce(r.amount_minor, 0) as amount_minor,
        coalesce(t.fee_minor, 0) - coalesce(r.fee_minor, 0) as fee_minor,
        coalesce(t.tax_minor, 0) - coalesce(r.tax_minor, 0) as tax_minor,
        r.transaction_id is not null as refunded,
        coalesce(lr.refunds, 0) as late_refunds,
        coalesce(lr.amount_minor, 0) as late_refund_amount_minor,
        r.transaction_id is not null and r.amount_minor >= t.amount_minor as fully_refunded,
        coalesce(t.rented_days, 0) as rented_days,
        case when $payment_date_rates and t.currency <> 'EUR' then t.rate_date end as rate_date,
        case when $payment_date_rates and t.currency <> 'EUR' then t.units_per_eur end as units_per_eur
    from rated as t
    left join applied_refunds as r on r.transaction_id = t.transaction_id
    left join late_refunds as lr on lr.transaction_id = t.transaction_id
    left join listing_keys as k on k.listing_id = t.listing_id
),

final as (
    select
        seller_id,
        activity,
        listing_id,
        currency,
        quarter,
        rate_date,
        units_per_eur,
        sum(amount_minor)::bigint as amount_minor,
        sum(fee_minor)::bigint as fee_minor,
        sum(tax_minor)::bigint as tax_minor,
        (count(*) filter (where not fully_refunded))::bigint as activities,
        (sum(rented_days) filter (where not fully_refunded))::bigint as rented_days,
        count(*)::bigint as transactions,
        (count(*) filter (where refunded))::bigint as refunded_transactions,
        (count(*) filter (where fully_refunded))::bigint as fully_refunded_transactions,
        sum(gross_amount_minor)::bigint as gross_amount_minor,
        sum(refunded_amount_minor)::bigint as refunded_amount_minor,
        sum(late_refunds)::bigint as refunds_after_as_of,
        sum(late_refund_amount_minor)::bigint as refunded_after_as_of_minor
    from net
    group by seller_id, activity, listing_id, currency, quarter, rate_date, units_per_eur
)

select * from final
order by seller_id, activity, listing_id, currency, quarter, rate_date
"""


def aggregate(settings: RunSettings) -> dict[str, Any]:
    """Write ``<run>/aggregate/activity_totals.parquet``."""
    period = settings.period
    q = period.quarter_starts_utc
    out = settings.stage_dir("aggregate")
    target = out / "activity_totals.parquet"
    tmp = out / ".activity_totals.parquet.tmp"
    con = connect(settings.run_path, "extract")
    register_local_days(con, period)
    try:
        keys, keys_tmp = out / "listing_keys.parquet", out / ".listing_keys.parquet.tmp"
        con.execute(f"copy ({LISTING_KEYS_SQL}) to {sql_literal(keys_tmp)} (format parquet)")
        keys_tmp.replace(keys)
        con.execute(f"create view listing_keys as select * from read_parquet({sql_literal(keys)})")
        con.execute(
            f"copy ({AGGREGATE_SQL}) to {sql_literal(tmp)} (format parquet, compression zstd)",
            {
                "as_of_end": period.as_of_end_utc,
                "q2": q[1],
                "q3": q[2],
                "q4": q[3],
                "payment_date_rates": settings.config.reporting.fx_basis == "payment_date",
            },
        )
        tmp.replace(target)
        rows, sellers = con.execute(
            "select count(*), count(distinct seller_id) from read_parquet(?)", [str(target)]
        ).fetchone() or (0, 0)
    finally:
        con.close()
    summary = {"rows": int(rows), "sellers": int(sellers)}
    write_json(out / "aggregate.json", summary)
    log.info("aggregate year=%s: %s", settings.year, summary)
    return summary
