-- Due diligence: each candidate seller's data items today, and what they were (DuckDB). Inputs:
-- sources (due_diligence_sources.sql: what the source holds, and the fingerprint), candidates
-- (the sellers whose fingerprint, scope or cycle calls for it), old_state (their rows as the
-- ledger holds them). A seller the source no longer holds keeps its items as they were.
-- {item_states} gives each item's new state, digest and day of verification from the old ones:
-- not applicable; missing; verified or invalid kept while the digest is the same (a verified
-- item no longer than $rely months after its verification, PStTG § 20(2)); else unverified.
-- {reverify_on}: the first day one of the verified items runs out (the run after it is a
-- candidate again).
with final as (
    select
        x.seller_id,
        x.in_source,
        o.seller_id is not null as known,
        case when x.in_source then x.seller_type else o.seller_type end as seller_type,
        case when x.in_source then x.country else o.country end as country,
        case when x.in_source then x.registered_at else o.registered_at end as registered_at,
        x.scope,
        {item_states},
        case when x.in_source then x.fingerprint else o.fingerprint end as fingerprint
    from sources as x
    inner join candidates as c on c.seller_id = x.seller_id
    left join old_state as o on o.seller_id = x.seller_id
)

select *, {reverify_on} as reverify_on from final
