-- Control count of the extracted refunds: every refund of a transaction of the period, counted
-- the way the extract selects them (extract_refunds.sql).
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
-- {same_transaction_id}: the ids equal byte for byte (reporting.source.same_transaction_id)
select count(*) as n
from refunds as r
where exists (
    select 1
    from transactions as t
    where
        t.transaction_id = r.transaction_id
        and {same_transaction_id}
        and t.paid_at >= :period_start
        and t.paid_at < :period_end
        and {operator_t}
)
