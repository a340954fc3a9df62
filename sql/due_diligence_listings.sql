-- Due diligence: each property listing's address and land registration number as digests
-- (DuckDB, over reader_property_listings). address_hash is null where the listing lacks its
-- city or country (what a reported Property Listing needs).
select
    dd_clean(listing_id) as listing_id,
    dd_clean(seller_id) as seller_id,
    case
        when dd_clean(address_city) is not null and dd_clean(address_country) is not null
            then dd_digest(concat_ws(
                chr(31),
                coalesce(dd_clean(address_street), ''),
                coalesce(dd_clean(address_building), ''),
                coalesce(dd_clean(address_post_code), ''),
                dd_clean(address_city),
                upper(dd_clean(address_country))
            ))
    end as address_hash,
    case
        when dd_clean(land_registration_number) is not null then dd_digest(dd_clean(land_registration_number))
    end as land_registration_hash
from reader_property_listings
where dd_clean(listing_id) is not null
qualify row_number() over (partition by dd_clean(listing_id) order by address_hash, land_registration_hash) = 1
