-- Due diligence: the values of the items to verify (DuckDB). Inputs: wanted (seller_id, item,
-- value_hash: the digest of the value the ledger's state holds, as the daily run made it),
-- ver_sellers and ver_tins (the source rows of those sellers, every column text, as read), and
-- tin_digests (due_diligence_tins.sql over ver_tins: each seller's TINs as one digest). A value is
-- taken only where its digest is the state's, so that what is verified is the value the run saw:
-- a value changed since is left to the next run. Each TIN of a seller is an identifier of its own
-- (the item is verified when all are); the VAT number's digest is due_diligence_sellers.sql's
-- (dd_digest of the trimmed vat_id). The values stay in this query's result: never written,
-- never logged.
with tins as (
    select
        dd_clean(seller_id) as seller_id,
        upper(dd_clean(issued_by)) as country,
        dd_clean(tin) as value
    from ver_tins
    where dd_clean(tin) is not null
),

vats as (
    select distinct
        dd_clean(seller_id) as seller_id,
        dd_clean(vat_id) as value,
        dd_digest(dd_clean(vat_id)) as value_hash
    from ver_sellers
    where dd_clean(vat_id) is not null
),

final as (
    select w.seller_id, w.item, t.country, t.value
    from wanted as w
    inner join tin_digests as h on h.seller_id = w.seller_id and h.tin_hash = w.value_hash
    inner join tins as t on t.seller_id = w.seller_id
    where w.item = $tin
    union all
    select w.seller_id, w.item, null as country, v.value
    from wanted as w
    inner join vats as v on v.seller_id = w.seller_id and v.value_hash = w.value_hash
    where w.item = $vat
)

select distinct * from final
order by seller_id, item, country nulls first, value
