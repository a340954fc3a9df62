-- The source's own count of each seller's transactions: those paid in the period, and those
-- without a usable payment time ({undated}: a NULL, and in SQLite a text that is no real
-- time), which could belong to any period. The reconciliation starts from these counts, not
-- from the rows the extract wrote.
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
select
    seller_id,
    sum(case when paid_at >= :period_start and paid_at < :period_end then 1 else 0 end) as source_transactions,
    sum(case when {undated} then 1 else 0 end) as undated_transactions
from transactions
where ((paid_at >= :period_start and paid_at < :period_end) or {undated}) and {operator}
group by seller_id
