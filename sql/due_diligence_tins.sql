-- Due diligence: each seller's TINs as one digest (DuckDB, over reader_seller_tins): the TINs with
-- their issuing states, in a fixed order; a seller without a TIN has no row.
select
    dd_clean(seller_id) as seller_id,
    dd_digest(string_agg(
        coalesce(upper(dd_clean(issued_by)), '') || chr(31) || dd_clean(tin),
        chr(30)
        order by coalesce(upper(dd_clean(issued_by)), ''), dd_clean(tin)
    )) as tin_hash
from reader_seller_tins
where dd_clean(tin) is not null and dd_clean(seller_id) is not null
group by dd_clean(seller_id)
