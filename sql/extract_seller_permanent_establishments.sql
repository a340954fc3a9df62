-- seller_permanent_establishments of the sellers active in the period.
with active as (
    select distinct seller_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end
),

final as (
    select
        x.seller_id,
        x.country{optional_columns}
    from seller_permanent_establishments as x
    inner join active as a on a.seller_id = x.seller_id
)

select * from final
