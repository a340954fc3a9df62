-- Due diligence: the sellers a run computes (DuckDB): those without a state yet; those whose
-- fingerprint, scope or period is not what their state says; those whose state is open (an item
-- lacking, a request cycle, a release due, the notice not sent while in scope: each day brings
-- their next action nearer); and those with a verification that runs out by today (PStTG § 20(2)).
-- The state of every other seller stands as it is: nothing of it is read again, computed or written.
-- Inputs: sources (due_diligence_sources.sql), state_keys (the ledger's rows, narrow).
select f.seller_id
from sources as f
left join state_keys as k on k.seller_id = f.seller_id
where
    k.seller_id is null
    or (f.in_source and f.fingerprint is distinct from k.fingerprint)
    or f.scope is distinct from k.scope
    or k.period <> $period
    or k.open
    or k.reverify_on <= $today
