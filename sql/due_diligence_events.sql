-- Due diligence: the events a run records (DuckDB), each seller's history in the ledger
-- (ledger_due_diligence_events): a change of scope; a change of item states, with each changed
-- item's state before and after, the items whose verification ran out (PStTG § 20(2)), and the
-- scope where it changed too (one event: a first run makes one per seller); the
-- requested data come in (the information a release rests on, PStTG § 24(1) Nr. 5); a cycle
-- closed. Inputs: new_state, old_state, cycle, items. {item_changes}: per item, a struct of the item
-- and its states before and after, null where it did not change; {expired}: per item, the item
-- where its verification ran out, else null. Details name items, states and dates, no value.
with j as (
    select
        n.seller_id,
        n.scope,
        o.scope as scope_before,
        list_filter([{item_changes}], lambda x: x is not null) as changes,
        list_filter([{expired}], lambda x: x is not null) as expired,
        c.data_received,
        c.closing,
        coalesce(o.requested_on, n.requested_on) as requested_on,
        coalesce(o.requested_items, n.requested_items) as requested_items
    from new_state as n
    inner join cycle as c on c.seller_id = n.seller_id
    inner join items as i on i.seller_id = n.seller_id
    left join old_state as o on o.seller_id = n.seller_id
    where n.is_changed
),

events as (
    select seller_id, 'scope' as kind, 1 as rank, to_json({'scope': scope, 'was': scope_before, 'period': $period}) as detail
    from j
    where scope is distinct from scope_before and len(changes) = 0

    union all

    select
        seller_id,
        'items',
        2,
        case
            when scope is distinct from scope_before then to_json({
                'changed': map_from_entries(list_transform(changes, lambda x: {'key': x.item, 'value': [x.was, x.now]})),
                'expired': expired,
                'scope': scope,
                'was': scope_before,
                'period': $period
            })
            else to_json({
                'changed': map_from_entries(list_transform(changes, lambda x: {'key': x.item, 'value': [x.was, x.now]})),
                'expired': expired
            })
        end
    from j
    where len(changes) > 0

    union all

    select
        seller_id,
        'data_received',
        3,
        to_json({'requested_on': requested_on, 'items': string_split(requested_items, ',')})
    from j
    where data_received

    union all

    select seller_id, 'cycle_closed', 4, to_json({'requested_on': requested_on, 'items': string_split(requested_items, ',')})
    from j
    where closing
)

select
    $operator_id as operator_id,
    seller_id,
    $at as "at",
    kind,
    cast(detail as varchar) as detail,
    $source as source,
    $now as recorded
from events
order by seller_id, rank
