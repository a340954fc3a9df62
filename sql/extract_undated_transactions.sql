-- Transactions without a usable payment time ({undated}): each is a finding of its seller.
select transaction_id, seller_id, case when paid_at is null then 1 else 0 end as is_null
from transactions
where {undated}
