-- Property listings of the sellers active in the period.
-- {optional_columns} is replaced by the optional contract columns present in the source
-- (e.g. other_property_type), chosen from a fixed allow-list, never from input data.
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
with active as (
    select distinct seller_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end and {operator}
),

final as (
    select
        p.listing_id,
        p.seller_id,
        p.address_street,
        p.address_building,
        p.address_post_code,
        p.address_city,
        p.address_country,
        p.land_registration_number,
        p.property_type{optional_columns}
    from property_listings as p
    inner join active as a on a.seller_id = p.seller_id
)

select * from final
