-- seller_tins of the sellers active in the period.
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
with active as (
    select distinct seller_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end and {operator}
),

final as (
    select
        x.seller_id,
        x.tin,
        x.issued_by
    from seller_tins as x
    inner join active as a on a.seller_id = x.seller_id
)

select * from final
