-- Control count of the extracted sellers: those with a transaction in the period.
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
select count(*) as n
from sellers
where seller_id in (
    select seller_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end and {operator}
)
