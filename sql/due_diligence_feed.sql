-- Due diligence: the lines of the feed due_diligence/actions.jsonl (DuckDB, over actions), in the
-- feed's order, each byte for byte what json.dumps writes of its object
-- (reporting.due_diligence.feed.feed_line_reference, which a property test holds this query to):
-- compact, UTF-8, the keys in the contract's order. dd_json encodes a text as JSON does (the
-- seller's id, the only text from the source); $bases: each action's legal basis as JSON text, in
-- the order of $actions.
select
    '{"seller_id":' || dd_json(seller_id)
    || ',"operator_id":' || dd_json($operator_id)
    || ',"action":' || dd_json(action)
    || ',"items_missing":[' || array_to_string(list_transform(items_missing, lambda i: dd_json(i)), ',') || ']'
    || ',"items_invalid":[' || array_to_string(list_transform(items_invalid, lambda i: dd_json(i)), ',') || ']'
    || ',"due_date":' || dd_day(due_date)
    || ',"latest_date":' || dd_day(latest_date)
    || ',"legal_basis":' || list_extract($bases, list_position($actions, action))
    || ',"date":' || dd_day(date)
    || ',"request_date":' || dd_day(request_date)
    || ',"day":' || coalesce(cast(day as varchar), 'null')
    || ',"overdue":' || case when overdue then 'true' else 'false' end
    || ',"reaches_day_180":' || case when reaches_day_180 then 'true' else 'false' end
    || ',"measure":' || coalesce(dd_json(measure), 'null')
    || '}' as line
from actions
order by seller_id, action_rank
