-- seller_financial_accounts of the sellers active in the period.
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
with active as (
    select distinct seller_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end and {operator}
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
