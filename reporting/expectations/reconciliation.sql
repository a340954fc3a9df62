-- The reconciliation of a run, per currency, in exact minor units before any conversion or
-- rounding: what the extract holds (transactions minus the refunds applied by the end of the
-- as-of day, with what the source summed itself) against the aggregates of every seller classified by its decision, each seller
-- counted once (a seller decided twice, or not at all, breaks the equality).
with applied as (
    select
        transaction_id,
        sum(amount_minor) as amount_minor,
        sum(coalesce(fee_minor, 0)) as fee_minor,
        sum(coalesce(tax_minor, 0)) as tax_minor
    from refunds
    where refunded_at < $as_of_end
    group by transaction_id
),

net as (
    select
        t.currency,
        t.amount_minor - coalesce(r.amount_minor, 0) as amount_minor,
        coalesce(t.fee_minor, 0) - coalesce(r.fee_minor, 0) as fee_minor,
        coalesce(t.tax_minor, 0) - coalesce(r.tax_minor, 0) as tax_minor
    from transactions as t
    left join applied as r on r.transaction_id = t.transaction_id
    -- what the source summed itself ([source] aggregate = "source"; empty otherwise), after refunds
    union all
    select currency, amount_minor, fee_minor, tax_minor
    from pushed_totals
),

extracted as (
    select
        currency,
        sum(amount_minor) as amount_minor,
        sum(fee_minor) as fee_minor,
        sum(tax_minor) as tax_minor
    from net
    group by currency
),

categorised as (
    select
        a.currency,
        a.amount_minor,
        a.fee_minor,
        a.tax_minor,
        case
            when d.decision = 'reported' then 'reported'
            when d.decision like 'excluded%' then 'excluded'
            when d.decision like 'not\_reportable:%' escape '\' then 'not_reportable'
            when d.decision like 'quarantined:%' then 'quarantined'
        end as category
    from activity_totals as a
    left join decisions as d on d.seller_id = a.seller_id
),

classified as (
    select
        currency,
        coalesce(sum(amount_minor) filter (where category = 'reported'), 0) as reported_amount_minor,
        coalesce(sum(amount_minor) filter (where category = 'excluded'), 0) as excluded_amount_minor,
        coalesce(sum(amount_minor) filter (where category = 'not_reportable'), 0) as not_reportable_amount_minor,
        coalesce(sum(amount_minor) filter (where category = 'quarantined'), 0) as quarantined_amount_minor,
        coalesce(sum(amount_minor) filter (where category is not null), 0) as classified_amount_minor,
        coalesce(sum(fee_minor) filter (where category is not null), 0) as classified_fee_minor,
        coalesce(sum(tax_minor) filter (where category is not null), 0) as classified_tax_minor
    from categorised
    group by currency
),

final as (
    select
        coalesce(e.currency, c.currency) as currency,
        coalesce(e.amount_minor, 0)::bigint as extracted_amount_minor,
        coalesce(c.classified_amount_minor, 0)::bigint as classified_amount_minor,
        coalesce(e.fee_minor, 0)::bigint as extracted_fee_minor,
        coalesce(c.classified_fee_minor, 0)::bigint as classified_fee_minor,
        coalesce(e.tax_minor, 0)::bigint as extracted_tax_minor,
        coalesce(c.classified_tax_minor, 0)::bigint as classified_tax_minor,
        coalesce(c.reported_amount_minor, 0)::bigint as reported_amount_minor,
        coalesce(c.excluded_amount_minor, 0)::bigint as excluded_amount_minor,
        coalesce(c.not_reportable_amount_minor, 0)::bigint as not_reportable_amount_minor,
        coalesce(c.quarantined_amount_minor, 0)::bigint as quarantined_amount_minor
    from extracted as e
    -- a currency that is missing (its seller quarantined) is a group of its own on both sides
    full outer join classified as c on c.currency is not distinct from e.currency
)

select
    (row_number() over (order by currency) - 1)::bigint as file_row_number,
    *
from final
order by currency
