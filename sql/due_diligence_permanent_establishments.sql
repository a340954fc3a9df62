-- Due diligence: each seller's permanent establishments as one digest of their member states
-- (DuckDB, over reader_seller_permanent_establishments); a seller without one has no row.
select
    dd_clean(seller_id) as seller_id,
    dd_digest(string_agg(distinct upper(dd_clean(country)), ',' order by upper(dd_clean(country)))) as pe_hash
from reader_seller_permanent_establishments
where dd_clean(country) is not null and dd_clean(seller_id) is not null
group by dd_clean(seller_id)
