-- Control count of the extract (compared with the rows written to staging).
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
select count(*) as n
from transactions
where paid_at >= :period_start and paid_at < :period_end and {operator}
