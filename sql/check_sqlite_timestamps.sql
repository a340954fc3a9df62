-- SQLite keeps timestamps as text, compared as text: only 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC
-- sorts like time. Any other shape ('T' separator, a zone offset, a number) would be selected
-- into the wrong period, so it is refused before the extract.
with bad as (
    select 'transactions' as tbl, transaction_id as row_key from transactions
    where not (paid_at glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'
        or paid_at glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9]*')
    union all
    select 'refunds', refund_id from refunds
    where not (refunded_at glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'
        or refunded_at glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9]*')
)

select tbl, count(*) as n, min(row_key) as example
from bad
group by tbl
