-- The transaction_ids of the period that the transactions of two or more operators of the group
-- hold, compared cleaned as the extract compares them ({key}: trimmed, reporting.pushdown.
-- OperatorFilter.value; {operator_id}: the cleaned operator id, NULL for the default operator's).
-- An id that names no operator ({unknown}) stops the run by itself (transaction.unknown_operator)
-- and is left out here. Each operator's run checks the uniqueness of its own transactions' keys; this finds a key
-- shared across operators, whose refunds each of them would deduct. Read only
-- from a source that has transactions.operator_id, in every operator's run: each stops.
with period_keys as (
    select
        {key} as transaction_id,
        coalesce({operator_id}, 'default') as operator_id
    from transactions
    where
        paid_at >= :period_start
        and paid_at < :period_end
        and {key} is not null
        and not ({unknown})
),

final as (
    select
        transaction_id,
        count(distinct operator_id) as operators
    from period_keys
    group by transaction_id
    having count(distinct operator_id) > 1
)

select * from final
order by transaction_id
