-- Transactions without a usable payment time ({undated}): each is a finding of its seller.
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
select transaction_id, seller_id, case when paid_at is null then 1 else 0 end as is_null
from transactions
where {undated} and {operator}
