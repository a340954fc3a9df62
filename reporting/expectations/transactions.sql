-- Transactions as the checks see them: the extracted columns, plus the currency of any rate
-- published on or before the end of the year (null when fx_rates has none for the currency).
with rated_currencies as (
    select distinct currency
    from fx_rates
    where rate_date <= $year_end
),

final as (
    select
        t.file_row_number,
        t.transaction_id,
        t.seller_id,
        t.activity,
        t.listing_id,
        t.paid_at,
        t.currency,
        r.currency as fx_rate_currency,
        t.amount_minor,
        t.fee_minor,
        t.tax_minor,
        t.rented_days
    from transactions as t
    left join rated_currencies as r on r.currency = t.currency
)

select * from final
