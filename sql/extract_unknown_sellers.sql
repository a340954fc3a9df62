-- Transactions of the period whose seller is not in the sellers table.
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
with period_tx as (
    select transaction_id, seller_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end and {operator}
),

final as (
    select t.transaction_id, t.seller_id
    from period_tx as t
    left join sellers as s on s.seller_id = t.seller_id
    where s.seller_id is null
)

select * from final
