-- Refunds from the period start on whose transaction does not exist: no transaction has their
-- transaction_id byte for byte ({same_transaction_id}: reporting.source.same_transaction_id).
with final as (
    select r.refund_id, r.transaction_id
    from refunds as r
    left join transactions as t on t.transaction_id = r.transaction_id and {same_transaction_id}
    where t.transaction_id is null and r.refunded_at >= :period_start
)

select * from final
