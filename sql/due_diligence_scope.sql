-- Due diligence: which sellers of the operator are in scope today (DuckDB, over the run's files).
-- A seller is in scope when it is active in the period so far and not excluded, as the rules of
-- the filing decide it (reporting.rules.decide), read set-based over the same aggregates:
--   no activity to report (every activity and listing summing to nothing)  -> not_active
--   governmental, listed                                                    -> excluded:*
--   an entity whose every reported listing had more than $max_rentals rentals -> excluded_listing:*
--   only sales of goods, at most $max_sales of them, and their consideration within the amount
--   limit of the filing state's reading (limits: the largest amount in minor units of each
--   currency that passes reporting.rules.amount_under_limit at the screening rate; fallback: the
--   sellers paid in several currencies, decided by reporting.rules.under_de_minimis in Python)
--                                                                           -> excluded:de_minimis
-- Inputs: totals (seller_id, activity, listing_id, currency, activities, amount_minor: the
-- period's sums after refunds, reporting.pushdown), listing_keys (reporting.stages.aggregate:
-- listings at one address are one Property Listing), src_sellers (seller_type and the flags),
-- limits (currency, limit_minor), fallback (seller_id, under).
with blocks as (
    select
        t.seller_id,
        t.activity,
        coalesce(k.listing_key, nullif(t.listing_id, ''), '') as listing_id,
        t.currency,
        t.activities,
        t.amount_minor
    from totals as t
    left join listing_keys as k on k.listing_id = t.listing_id
),

-- the rules' groups: an activity (or listing) with something to report
groups as (
    select seller_id, activity, listing_id, sum(activities) as activities
    from blocks
    group by seller_id, activity, listing_id
    having sum(amount_minor) <> 0 or sum(activities) <> 0
),

per_seller as (
    select
        g.seller_id,
        bool_and(g.activity = $goods) as goods_only,
        count(*) filter (
            where not (s.seller_type = 'entity' and g.activity = $property and g.activities > $max_rentals)
        ) as kept,
        coalesce(sum(g.activities) filter (where g.activity = $goods), 0) as goods_count
    from groups as g
    inner join src_sellers as s on s.seller_id = g.seller_id
    group by g.seller_id
),

goods as (
    select
        b.seller_id,
        count(distinct b.currency) as currencies,
        min(b.currency) as currency,
        sum(b.amount_minor) as amount_minor
    from blocks as b
    inner join per_seller as p on p.seller_id = b.seller_id
    where p.goods_only and p.goods_count <= $max_sales and b.activity = $goods
    group by b.seller_id
),

final as (
    select
        p.seller_id,
        case
            when s.is_governmental then 'excluded:governmental'
            when s.is_listed then 'excluded:listed'
            when p.kept = 0 then 'excluded_listing:over_2000_rentals'
            when
                p.goods_only and p.goods_count <= $max_sales
                and (
                    (g.currencies = 1 and l.limit_minor is not null and g.amount_minor <= l.limit_minor)
                    or coalesce(f.under, false)
                )
                then 'excluded:de_minimis'
            else 'in_scope'
        end as scope,
        p.goods_only and p.goods_count <= $max_sales and g.currencies = 1 and l.limit_minor is null
            or p.goods_only and p.goods_count <= $max_sales and g.currencies > 1 as needs_fallback
    from per_seller as p
    inner join src_sellers as s on s.seller_id = p.seller_id
    left join goods as g on g.seller_id = p.seller_id
    left join limits as l on l.currency = g.currency
    left join fallback as f on f.seller_id = p.seller_id
)

select * from final
