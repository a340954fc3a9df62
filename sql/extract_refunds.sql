-- Every refund of a transaction of the period, whatever its date: the as-of cut-off is applied
-- later, so that refunds after the cut-off stay visible in the explanation.
with period_tx as (
    select transaction_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end
),

final as (
    select
        r.refund_id,
        r.transaction_id,
        r.refunded_at,
        r.amount_minor,
        r.fee_minor,
        r.tax_minor
    from refunds as r
    inner join period_tx as t on t.transaction_id = r.transaction_id
)

select * from final
