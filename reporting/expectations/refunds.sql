-- Refunds as the checks see them: each refund with the transaction it refunds (null when that
-- transaction does not exist), the seller of that transaction, and the totals of all refunds
-- of the same transaction, so that "refunds not exceeding their transaction" is one comparison
-- per refund (one refund alone, or several together).
with refunded_transactions as (
    select distinct transaction_id
    from refunds
),

transaction_amounts as (
    -- one row per transaction_id even if the key is duplicated (a separate, structural check);
    -- only the refunded transactions, so as not to group every transaction of the year
    select
        t.transaction_id,
        min(t.seller_id) as seller_id,
        min(t.amount_minor) as amount_minor,
        min(coalesce(t.fee_minor, 0)) as fee_minor,
        min(coalesce(t.tax_minor, 0)) as tax_minor
    from transactions as t
    semi join refunded_transactions as r on r.transaction_id = t.transaction_id
    group by t.transaction_id
),

final as (
    select
        r.file_row_number,
        r.refund_id,
        r.transaction_id,
        t.transaction_id as refunded_transaction_id,
        t.seller_id,
        r.refunded_at,
        r.amount_minor,
        r.fee_minor,
        r.tax_minor,
        t.amount_minor as transaction_amount_minor,
        t.fee_minor as transaction_fee_minor,
        t.tax_minor as transaction_tax_minor,
        -- saturated at the 64-bit maximum: a sum beyond it still exceeds any transaction (and is
        -- the finding refund.amount_overflow of the relational checks), instead of failing the cast
        least(sum(r.amount_minor) over (partition by r.transaction_id), 9223372036854775807)::bigint
            as refunds_amount_minor,
        least(sum(coalesce(r.fee_minor, 0)) over (partition by r.transaction_id), 9223372036854775807)::bigint
            as refunds_fee_minor,
        least(sum(coalesce(r.tax_minor, 0)) over (partition by r.transaction_id), 9223372036854775807)::bigint
            as refunds_tax_minor
    from refunds as r
    left join transaction_amounts as t on t.transaction_id = r.transaction_id
)

select * from final
