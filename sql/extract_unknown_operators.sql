-- Transactions of the period, or without a usable payment time ({undated}), whose operator_id
-- names no operator of the configuration ({unknown}: reporting.pushdown.OperatorFilter.unknown).
-- Read only from a source that has transactions.operator_id. Each stops the run: the row may be
-- any operator's, so no operator's figures can be trusted until it is corrected.
select transaction_id, seller_id, operator_id
from transactions
where ((paid_at >= :period_start and paid_at < :period_end) or {undated}) and {unknown}
