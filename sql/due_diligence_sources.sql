-- Due diligence: what the source holds of each seller's data items today (DuckDB, over the
-- run's files), and its fingerprint: every seller active for the operator now (scope) or with a
-- state already (state_keys). Each item applies to the seller or not, and the source holds it or
-- not: its digest (the first 16 hex digits of a SHA-256 of its value, made while reading the
-- source) or null. No value of an item is here: src_sellers, src_tins, src_pes and src_listings
-- hold digests and flags only.
--   name                     always: individuals first and last name, entities the legal name
--   primary_address          always: city and a country (address_country, else residence_country)
--   tin                      always, unless the seller has none because its state issues or
--                            requires none (sellers.tin_not_issued, PStTG § 17(4))
--   birth_place              individuals without a TIN (PStTG § 14(2) Nr. 3): birth city and country
--   birth_date               individuals
--   vat                      only where the seller has one (PStTG § 17(5)): absent is not applicable
--   business_registration    entities, unless their state issues none (sellers.business_registration_not_issued)
--   permanent_establishment  entities that have one (PStTG § 17(5))
--   property_address         sellers renting out property in the period: every such listing's city and country
--   land_registration        ... where a listing has a land registration number (PStTG § 17(5))
-- The fingerprint is a digest of everything an item's state reads from the source: a seller whose
-- fingerprint, scope and cycle stand as they did is not computed again ({item_sources}: each
-- item's applicability and digest).
with property as (
    select
        t.seller_id,
        bool_and(l.address_hash is not null) as complete,
        substr(sha256(string_agg(coalesce(l.address_hash, '-'), ',' order by t.listing_id)), 1, 16) as address_hash,
        substr(sha256(string_agg(l.land_registration_hash, ',' order by t.listing_id)), 1, 16) as land_hash
    from (select distinct seller_id, listing_id from totals where activity = $property) as t
    left join src_listings as l on l.listing_id = t.listing_id
    group by t.seller_id
),

sellers as (
    select seller_id from scope
    union
    select seller_id from state_keys
),

src as (
    select
        x.seller_id,
        s.seller_id is not null as in_source,
        s.seller_type,
        s.country,
        s.registered_at,
        coalesce(sc.scope, $not_active) as scope,
        -- whether each item applies, and the digest of its value (null: the source lacks it)
        true as name_app,
        s.name_hash as name_new,
        true as primary_address_app,
        s.primary_address_hash as primary_address_new,
        not (coalesce(s.tin_not_issued, false) and tn.tin_hash is null) as tin_app,
        tn.tin_hash as tin_new,
        s.seller_type is distinct from 'entity' and tn.tin_hash is null as birth_place_app,
        s.birth_place_hash as birth_place_new,
        s.seller_type is distinct from 'entity' as birth_date_app,
        s.birth_date_hash as birth_date_new,
        s.vat_hash is not null as vat_app,
        s.vat_hash as vat_new,
        s.seller_type = 'entity'
            and not (coalesce(s.business_registration_not_issued, false) and s.business_registration_hash is null)
            as business_registration_app,
        s.business_registration_hash as business_registration_new,
        s.seller_type = 'entity' and pe.pe_hash is not null as permanent_establishment_app,
        pe.pe_hash as permanent_establishment_new,
        p.seller_id is not null as property_address_app,
        case when p.complete then p.address_hash end as property_address_new,
        p.land_hash is not null as land_registration_app,
        p.land_hash as land_registration_new
    from sellers as x
    left join src_sellers as s on s.seller_id = x.seller_id
    left join src_tins as tn on tn.seller_id = x.seller_id
    left join src_pes as pe on pe.seller_id = x.seller_id
    left join property as p on p.seller_id = x.seller_id
    left join scope as sc on sc.seller_id = x.seller_id
)

select
    *,
    case
        when in_source then sha256(concat_ws('|', seller_type, country, registered_at, {item_sources}))
    end as fingerprint
from src
