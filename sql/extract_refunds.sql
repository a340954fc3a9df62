-- Every refund of a transaction of the period, whatever its date: the as-of cut-off is applied
-- later, so that refunds after the cut-off stay visible in the explanation. Driven by the refunds
-- (a few per cent of the transactions), each looked up by its transaction's key: SQLite would
-- otherwise walk every transaction of the period into the refunds index (1.6 s instead of 0.07 s
-- at 900,000 transactions); an EXISTS is a semi-join everywhere, and takes each refund once.
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
-- {same_transaction_id}: the ids equal byte for byte (reporting.source.same_transaction_id: on
-- MariaDB/MySQL, whose usual collations take 't1' and 'T1 ' for 'T1', as binary strings)
select
    r.refund_id,
    r.transaction_id,
    r.refunded_at,
    r.amount_minor,
    r.fee_minor,
    r.tax_minor
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
