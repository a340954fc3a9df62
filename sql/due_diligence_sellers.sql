-- Due diligence: each seller of the source as digests and flags (DuckDB, over the batches read
-- from the source, reader_sellers: every column as text, '' for none). No value leaves this
-- query: each item present becomes the first 16 hex digits of a SHA-256 of its value
-- (dd_digest), so that the run can tell a changed value (whose verification no longer holds)
-- without keeping it. dd_clean trims white space (as the extract does) and makes '' null;
-- dd_flag reads a boolean as any database writes it.
with s as (
    select
        dd_clean(seller_id) as seller_id,
        dd_clean(seller_type) as seller_type,
        dd_clean(first_name) as first_name,
        dd_clean(last_name) as last_name,
        dd_clean(legal_name) as legal_name,
        dd_clean(birth_date) as birth_date,
        dd_clean(birth_city) as birth_city,
        upper(dd_clean(birth_country)) as birth_country,
        upper(dd_clean(residence_country)) as residence_country,
        dd_clean(address_street) as address_street,
        dd_clean(address_building) as address_building,
        dd_clean(address_post_code) as address_post_code,
        dd_clean(address_city) as address_city,
        upper(dd_clean(address_country)) as address_country,
        dd_clean(vat_id) as vat_id,
        dd_clean(business_registration_number) as business_registration_number,
        dd_flag(is_governmental) as is_governmental,
        dd_flag(is_listed) as is_listed,
        dd_clean(registered_at) as registered_at,
        dd_flag(tin_not_issued) as tin_not_issued,
        dd_flag(business_registration_not_issued) as business_registration_not_issued
    from reader_sellers
),

digests as (
    select
        seller_id,
        seller_type,
        residence_country as country,
        try_cast(left(registered_at, 10) as date) as registered_at,
        registered_at is not null and try_cast(left(registered_at, 10) as date) is null as registered_at_unread,
        is_governmental,
        is_listed,
        tin_not_issued,
        business_registration_not_issued,
        case
            when seller_type = 'entity' and legal_name is not null then dd_digest('entity' || chr(31) || legal_name)
            when seller_type is distinct from 'entity' and first_name is not null and last_name is not null
                then dd_digest(concat_ws(chr(31), coalesce(seller_type, ''), first_name, last_name))
        end as name_hash,
        case
            when address_city is not null and coalesce(address_country, residence_country) is not null
                then dd_digest(concat_ws(
                    chr(31),
                    coalesce(address_street, ''),
                    coalesce(address_building, ''),
                    coalesce(address_post_code, ''),
                    address_city,
                    coalesce(address_country, residence_country)
                ))
        end as primary_address_hash,
        case
            when birth_city is not null and birth_country is not null
                then dd_digest(birth_city || chr(31) || birth_country)
        end as birth_place_hash,
        case when birth_date is not null then dd_digest(birth_date) end as birth_date_hash,
        case when vat_id is not null then dd_digest(vat_id) end as vat_hash,
        case
            when business_registration_number is not null then dd_digest(business_registration_number)
        end as business_registration_hash
    from s
    where seller_id is not null
)

select * from digests
