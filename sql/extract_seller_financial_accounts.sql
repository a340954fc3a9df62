-- seller_financial_accounts of the sellers active in the period.
with active as (
    select distinct seller_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end
),

final as (
    select
        x.seller_id,
        x.identifier,
        x.account_holder_name
    from seller_financial_accounts as x
    inner join active as a on a.seller_id = x.seller_id
)

select * from final
