-- Due diligence: one row per seller where the source's sellers table holds a seller_id twice (its
-- key broken: the filing's checks report it): one of its rows, the same one on every run (DuckDB,
-- over src_sellers_read, the rows of due_diligence_sellers.sql). Run only when ids repeat.
select *
from src_sellers_read
qualify row_number() over (
    partition by seller_id
    order by concat_ws('|', seller_type, country, name_hash, primary_address_hash, birth_place_hash, birth_date_hash,
        vat_hash, business_registration_hash)
) = 1
