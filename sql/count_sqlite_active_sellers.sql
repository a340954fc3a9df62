-- SQLite's one pass for the period's sellers (reporting.stages.extract._sqlite_active_sellers):
-- per seller, the counts of sql/count_transactions_by_seller.sql (the run's operator's
-- transactions paid in the period, and those without a usable payment time, {undated}), and in
-- the same pass those of the period or undated whose operator_id names no operator of the
-- configuration ({unknown}: the rows of sql/extract_unknown_operators.sql, which then runs only
-- where there is one). A seller with only such rows has 0 of the first two counts.
-- {operator}: the transactions of the run's operator (reporting.pushdown.OperatorFilter);
-- {mine_selected}, {unknown_selected}: the same tests of a row the where clause selected, each a
-- NULL operator_id decided first without trim() (such a row is selected only as the default
-- operator's, and no unknown operator's)
select
    seller_id,
    sum(case when paid_at >= :period_start and paid_at < :period_end and {mine_selected} then 1 else 0 end)
        as source_transactions,
    sum(case when {undated} and {mine_selected} then 1 else 0 end) as undated_transactions,
    sum(case when {unknown_selected} then 1 else 0 end) as unknown_operator_transactions
from transactions
where ((paid_at >= :period_start and paid_at < :period_end) or {undated}) and ({operator} or {unknown})
group by seller_id
