-- The reconciliation of every seller's transactions, starting from the source's own count
-- (extract/control_seller_counts, counted by the source database, not from the rows written):
-- the transactions of the period in the source, in the extract and in the seller's aggregates
-- are the same number, and a seller with a transaction without a usable payment time is
-- quarantined. Only the sellers where one of these fails are returned: each is a failure.
with extracted as (
    select seller_id, sum(n) as n
    from (
        select seller_id, count(*) as n
        from transactions
        group by seller_id
        -- what the source summed itself ([source] aggregate = "source"; empty otherwise)
        union all
        select seller_id, sum(transactions) as n
        from pushed_totals
        group by seller_id
    )
    group by seller_id
),

classified as (
    select seller_id, sum(transactions) as n
    from activity_totals
    group by seller_id
),

counted as (
    select
        coalesce(s.seller_id, e.seller_id, c.seller_id) as seller_id,
        coalesce(s.source_transactions, 0)::bigint as source_transactions,
        coalesce(e.n, 0)::bigint as extracted_transactions,
        coalesce(c.n, 0)::bigint as classified_transactions,
        coalesce(s.undated_transactions, 0)::bigint as undated_transactions
    from control_seller_counts as s
    full outer join extracted as e on e.seller_id = s.seller_id
    full outer join classified as c on c.seller_id = coalesce(s.seller_id, e.seller_id)
),

final as (
    select
        k.*,
        (
            k.undated_transactions > 0
            and k.source_transactions > 0
            and coalesce(d.decision, '') not like 'quarantined:%'
        ) as undated_not_quarantined
    from counted as k
    left join decisions as d on d.seller_id = k.seller_id
)

select
    (row_number() over (order by seller_id) - 1)::bigint as file_row_number,
    *
from final
-- (an aggregate or decision row without seller_id is a structural finding of its own table)
where seller_id is not null
    and (source_transactions <> extracted_transactions
    or source_transactions <> classified_transactions
    or undated_not_quarantined)
order by seller_id
