-- Control count of the extract (compared with the rows written to staging).
select count(*) as n
from transactions
where paid_at >= :period_start and paid_at < :period_end
