-- Due diligence: the request cycle as a run on $today leaves it (DuckDB), set-based; the rule in
-- words and its reference are reporting.diligence_cycle.advance, which a property test holds this
-- query to. Input cycle_in: per seller whether it is in scope, the items it lacks (needs) and the
-- invalid ones among them, registered_at, and the cycle's columns as the ledger holds them.
--   An open cycle whose requested items all came in closes, unless a measure waits for its
--   release (then due from the first day the data was in). The notice and the next request are
--   due from the first day they are, and not while the seller is out of scope.
with o as (
    select
        *,
        requested_on is not null
        and len(list_filter(coalesce(requested_items, []), lambda i: list_contains(needs, i))) = 0
        and measure_on is null as closing
    from cycle_in
),

c as (
    select
        seller_id,
        in_scope,
        needs,
        invalid,
        registered_at,
        notice_due as notice_due_before,
        notice_on,
        case when closing then null else request_due end as request_due_before,
        case when closing then null else requested_on end as requested_on,
        case when closing then []::varchar[] else coalesce(requested_items, []::varchar[]) end as requested_items,
        case when closing then null else reminder_1_on end as reminder_1_on,
        case when closing then null else reminder_2_on end as reminder_2_on,
        measure,
        measure_on,
        release_due as release_due_before,
        cycles + cast(closing as integer) as cycles,
        closing
    from o
),

final as (
    select
        seller_id,
        in_scope,
        needs,
        invalid,
        registered_at,
        case
            when notice_on is not null then notice_due_before
            when in_scope then coalesce(notice_due_before, $today)
        end as notice_due,
        notice_on,
        case
            when requested_on is not null then request_due_before
            when len(needs) > 0 and in_scope then coalesce(request_due_before, $today)
        end as request_due,
        requested_on,
        requested_items,
        reminder_1_on,
        reminder_2_on,
        measure,
        measure_on,
        case
            when
                requested_on is not null and measure_on is not null
                and len(list_filter(requested_items, lambda i: list_contains(needs, i))) = 0
                then coalesce(release_due_before, $today)
        end as release_due,
        cycles,
        closing,
        list_filter(requested_items, lambda i: list_contains(needs, i)) as outstanding,
        release_due_before
    from c
)

select
    * exclude (release_due_before),
    closing or (release_due is not null and release_due_before is null) as data_received
from final
