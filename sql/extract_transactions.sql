-- Transactions paid or credited in the period (UTC bounds of the local reporting year).
-- {operator}, {operator_t}: the transactions of the run's operator (reporting.pushdown.OperatorFilter)
select
    transaction_id,
    seller_id,
    activity,
    listing_id,
    paid_at,
    currency,
    amount_minor,
    fee_minor,
    tax_minor,
    rented_days
from transactions
where paid_at >= :period_start and paid_at < :period_end and {operator}
