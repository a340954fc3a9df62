-- Seller identity as the checks see it. Names and the registration number are reduced to
-- 'present' or null and the birth date to its year, so no personal value ever reaches Great
-- Expectations, its results or its Data Docs. The year is exact for EU rule 40130: a date is
-- between 1900-01-01 and 31 December of year Y exactly when its year is between 1900 and Y.
select
    file_row_number,
    seller_id,
    seller_type,
    case when first_name is not null then 'present' end as first_name,
    case when last_name is not null then 'present' end as last_name,
    case when legal_name is not null then 'present' end as legal_name,
    year(birth_date) as birth_year,
    residence_country,
    address_country,
    case when business_registration_number is not null then 'present' end as business_registration_number
from sellers
