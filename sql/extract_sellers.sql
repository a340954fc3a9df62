-- Sellers with at least one transaction paid or credited in the period.
-- {optional_columns} is replaced by the optional contract columns present in the source
-- :period_start, :period_end: UTC bounds of the local reporting year (end exclusive).
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
with active as (
    select distinct seller_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end and {operator}
),

final as (
    select
        s.seller_id,
        s.seller_type,
        s.first_name,
        s.last_name,
        s.legal_name,
        s.birth_date,
        s.birth_city,
        s.birth_country,
        s.residence_country,
        s.address_street,
        s.address_building,
        s.address_post_code,
        s.address_city,
        s.address_country,
        s.vat_id,
        s.business_registration_number,
        s.is_governmental,
        s.is_listed{optional_columns}
    from sellers as s
    inner join active as a on a.seller_id = s.seller_id
)

select * from final
