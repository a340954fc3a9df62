-- Exchange rates up to the end of the reporting year (units of the currency per 1 EUR).
-- Read as text: a DECIMAL stored by SQLite comes back as a float otherwise, and rates are never
-- read through a float.
select currency, rate_date, cast(units_per_eur as char(64)) as units_per_eur
from fx_rates
where rate_date <= :last_rate_date
