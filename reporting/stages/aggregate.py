"""Aggregate: per seller, activity, property listing, currency and quarter, after refunds.

Runs in DuckDB over the staged Parquet files, so tens of millions of transactions never become
Python objects. Quarters come from comparing the UTC payment time with the UTC instants of the
local quarter starts (see :mod:`reporting.period`). A refund applies to its transaction's
quarter when it was refunded before the end of the as-of day (local time).
"""

from __future__ import annotations

import logging

from reporting.jurisdictions import rule_set_for
from reporting.pushdown import FINISH_SQL, source_totals_sql
from reporting.results import AggregateResult
from reporting.settings import RunSettings, write_json
from reporting.staging import connect, sql_literal

log = logging.getLogger(__name__)

# A Property Listing is every unit at the same street address offered by the same seller: listings
# of one seller whose normalised address is identical are one listing, keyed by the smallest
# listing_id among them. Normalised per part: case-folded, white space and punctuation removed
# ("Pilies g. 3A" = "pilies g 3 a"). A listing without a street is never merged: without a street
# there is no "same street address" to establish.
#
# DAC7 adds "owned by the same owner" (PStTG § 6(7); the project's legal notes, Q3): with
# ``same_owner``, units of different owners (``property_listings.owner_id``) stay apart; units
# whose owner the source does not give are taken as one owner's (a source without the column reads
# as before). The OECD Model Rules have no owner condition (HMRC IEIM904230): the units of any
# owners at one address offered by one seller are one listing.
_LISTING_KEYS_SQL = """
with normalised as (
    select
        listing_id,
        seller_id,
        {owner} as owner_key,
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
        owner_key,
        case when street_key is null then listing_id else address_key end as merge_key
    from normalised
)

select
    listing_id,
    min(listing_id) over (partition by seller_id, merge_key, owner_key) as listing_key,
    count(*) over (partition by seller_id, merge_key, owner_key) as units
from keyed
"""


def listing_keys_sql(*, same_owner: bool) -> str:
    """The query of the listing keys over ``property_listings``: with ``same_owner`` (DAC7) the
    units of one owner only are merged (the table has ``owner_id``), else those of any owner."""
    return _LISTING_KEYS_SQL.replace("{owner}", "owner_id" if same_owner else "null")


def aggregate(settings: RunSettings) -> AggregateResult:
    """Write ``<run>/aggregate/activity_totals.parquet``."""
    period = settings.period
    out = settings.stage_dir("aggregate")
    target = out / "activity_totals.parquet"
    tmp = out / ".activity_totals.parquet.tmp"
    con = connect(settings.run_path, "extract")
    try:
        keys, keys_tmp = out / "listing_keys.parquet", out / ".listing_keys.parquet.tmp"
        same_owner = rule_set_for(settings.config.operator.country).listing_same_owner
        con.execute(f"copy ({listing_keys_sql(same_owner=same_owner)}) to {sql_literal(keys_tmp)} (format parquet)")
        keys_tmp.replace(keys)
        con.execute(f"create view listing_keys as select * from read_parquet({sql_literal(keys)})")
        totals = source_totals_sql(
            period, payment_date_rates=settings.config.reporting.fx_basis == "payment_date", staged=True
        )
        pushed = settings.run_path / "extract" / "pushed_totals.parquet"
        if pushed.exists():  # what the source summed, beside the rows the extract read
            totals = f"({totals}) union all by name select * from read_parquet({sql_literal(pushed)})"
        con.execute(
            f"copy (with source_totals as ({totals}) {FINISH_SQL}) to {sql_literal(tmp)} "
            "(format parquet, compression zstd)"
        )
        tmp.replace(target)
        rows, sellers = con.execute(
            "select count(*), count(distinct seller_id) from read_parquet(?)", [str(target)]
        ).fetchone() or (0, 0)
    finally:
        con.close()
    summary: AggregateResult = {"rows": int(rows), "sellers": int(sellers)}
    write_json(out / "aggregate.json", summary)
    log.info("aggregate year=%s: %s", settings.year, summary)
    return summary
