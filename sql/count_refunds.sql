-- Control count of the extracted refunds: every refund of a transaction of the period.
select count(*) as n
from refunds
where transaction_id in (
    select transaction_id
    from transactions
    where paid_at >= :period_start and paid_at < :period_end
)
