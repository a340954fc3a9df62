-- Due diligence: the sellers whose de minimis test the scope's SQL leaves to Python (DuckDB):
-- sales of goods only, few enough, paid in several currencies or in one without a screening
-- limit; per seller and currency, the goods' consideration in minor units and the number of
-- sales (reporting.due_diligence.scope.under_limit decides them with the rules' own test).
with sellers as (
    select t.seller_id, sum(t.activities) as sales
    from totals as t
    inner join scope as s on s.seller_id = t.seller_id
    where s.needs_fallback and t.activity = $goods
    group by t.seller_id
)

select b.seller_id, b.currency, sum(b.amount_minor) as amount_minor, any_value(p.sales) as sales
from totals as b
inner join sellers as p on p.seller_id = b.seller_id
where b.activity = $goods
group by b.seller_id, b.currency
order by b.seller_id, b.currency
