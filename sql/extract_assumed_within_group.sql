-- The sellers of the period's transactions attributed to an operator of the group that no
-- transaction may be attributed to ({assumed}: reporting.pushdown.OperatorFilter.attributed_to):
-- one whose reporting another operator of the group assumes. The assuming operator decides each
-- seller on the transactions attributed to it alone, so a seller left with the assumed one would
-- be decided on part of its sales, or reported by no one. Read in the runs of both operators.
with stray as (
    select seller_id
    from transactions
    where
        paid_at >= :period_start
        and paid_at < :period_end
        and {assumed}
),

final as (
    select
        seller_id,
        count(*) as transactions
    from stray
    group by seller_id
)

select * from final
order by seller_id
