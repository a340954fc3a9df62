-- Due diligence: each seller's new state row as the ledger keeps it (ledger_due_diligence), and
-- whether it changed (DuckDB). Inputs: items (due_diligence_items.sql), cycle
-- (due_diligence_cycle.sql), old_state (the ledger's rows as read). A row that changed gets the
-- run's day ($today) as updated and its time ($now) as changed; only such rows are written.
-- {item_columns}: each item's state, digest and day of verification; {compare}: whether any
-- column but updated and changed differs from the old row.
with n as (
    select
        $operator_id as operator_id,
        i.seller_id,
        i.seller_type,
        i.country,
        i.registered_at,
        i.scope,
        $period as period,
        i.fingerprint,
        array_to_string(c.needs, ',') as needs,
        {item_columns},
        c.notice_due,
        c.notice_on,
        c.request_due,
        c.requested_on,
        nullif(array_to_string(c.requested_items, ','), '') as requested_items,
        c.reminder_1_on,
        c.reminder_2_on,
        c.measure,
        c.measure_on,
        c.release_due,
        c.cycles,
        coalesce(o.first_seen, $today) as first_seen
    from items as i
    inner join cycle as c on c.seller_id = i.seller_id
    left join old_state as o on o.seller_id = i.seller_id
),

d as (
    select
        n.*,
        o.updated as updated_before,
        o.changed as changed_before,
        o.seller_id is null or ({compare}) as is_changed
    from n
    left join old_state as o on o.seller_id = n.seller_id
)

select
    * exclude (updated_before, changed_before, is_changed),
    case when is_changed then $today else updated_before end as updated,
    case when is_changed then $now else changed_before end as changed,
    is_changed
from d
