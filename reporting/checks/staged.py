"""Checks of the staged extract: every rule returns findings that name the table, row key and rule.

The walking skeleton treats every error finding as fatal for the run (nothing is published).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from reporting.findings import Finding
from reporting.period import Period
from reporting.staging import connect, register_local_days
from reporting.vocabulary import ACTIVITIES


@dataclass(frozen=True, slots=True)
class Check:
    rule: str
    table: str
    message: str
    sql: str  # returns (key, detail); detail is appended to the message when not null
    whole_run: bool = False  # a finding that stops the run instead of quarantining the seller
    # its SQL joins the refunds to their transactions: it runs where ``transactions`` holds only the
    # refunded ones (:func:`_refunded_connection`), the same rows of the join for a fraction of the scan
    refunded: bool = False


#: The most a seller's amounts (or fees, or taxes, or refunds) may add up to, in minor units: the
#: 64-bit range the aggregates are counted in, with a margin of 1000 for the conversion into EUR
#: (a currency worth more than the euro gives larger EUR amounts). About EUR 92 trillion.
MAX_SELLER_TOTAL = (2**63 - 1) // 1000


def _country_hint(column: str) -> str:
    """SQL: the usual mistake behind a code that is no ISO 3166 code, as the finding's detail."""
    return (
        f"case {column} when 'UK' then 'UK: the United Kingdom is GB in ISO 3166' "
        f"when 'EL' then 'EL: Greece is GR in ISO 3166; EL is only its VAT and EU prefix' end"
    )


CHECKS: tuple[Check, ...] = (
    Check(
        "seller.type",
        "sellers",
        "seller_type must be 'individual' or 'entity'",
        "select seller_id, null from sellers where seller_type is null or seller_type not in ('individual', 'entity')",
    ),
    Check(
        "seller.no_residence_country",
        "sellers",
        "residence_country is missing: it decides whether and where the seller is reported",
        "select seller_id, null from sellers where residence_country is null",
    ),
    Check(
        "seller.bad_residence_country",
        "sellers",
        "residence_country is not an ISO 3166 alpha-2 code",
        f"select seller_id, {_country_hint('residence_country')} from sellers where residence_country is not null "
        "and residence_country not in (select code from iso_countries)",
    ),
    Check(
        "seller.bad_country",
        "sellers",
        "address_country, birth_country or gvs_jurisdiction is not an ISO 3166 alpha-2 code",
        f"select seller_id, coalesce({_country_hint('address_country')}, {_country_hint('birth_country')}, "
        f"{_country_hint('gvs_jurisdiction')}) "
        "from sellers where "
        "(address_country is not null and address_country not in (select code from iso_countries)) "
        "or (birth_country is not null and birth_country not in (select code from iso_countries)) "
        "or (gvs_jurisdiction is not null and gvs_jurisdiction not in (select code from iso_countries))",
    ),
    Check(
        "listing.property_type",
        "property_listings",
        "property_type must be one of DPI901 ... DPI910",
        "select listing_id, property_type from property_listings where property_type is not null "
        "and property_type not in ('DPI901', 'DPI902', 'DPI903', 'DPI904', 'DPI905', 'DPI906', "
        "'DPI907', 'DPI908', 'DPI909', 'DPI910')",
    ),
    Check(
        "tin.bad_issuer",
        "seller_tins",
        "issued_by is not an ISO 3166 alpha-2 code",
        f"select seller_id, {_country_hint('issued_by')} from seller_tins "
        "where issued_by is null or issued_by not in (select code from iso_countries)",
    ),
    Check(
        "listing.bad_country",
        "property_listings",
        "address_country is missing or not an ISO 3166 alpha-2 code",
        f"select listing_id, {_country_hint('address_country')} from property_listings "
        "where address_country is null or address_country not in (select code from iso_countries)",
    ),
    Check(
        "transaction.activity",
        "transactions",
        "activity must be one of " + ", ".join(ACTIVITIES),
        "select transaction_id, activity from transactions where activity is null or activity not in "
        "(" + ", ".join(f"'{a}'" for a in ACTIVITIES) + ")",
    ),
    Check(
        "currency.unknown",
        "transactions",
        "currency is not an ISO 4217 payment currency",
        "select transaction_id, currency from transactions "
        "where currency is null or currency not in (select code from payment_currencies)",
    ),
    Check(
        "transaction.negative_amount",
        "transactions",
        "amount_minor, fee_minor and tax_minor must be integers >= 0",
        "select transaction_id, null from transactions where amount_minor is null or amount_minor < 0 "
        "or coalesce(fee_minor, 0) < 0 or coalesce(tax_minor, 0) < 0",
    ),
    Check(
        "transaction.listing_missing",
        "transactions",
        "an immovable_property transaction needs a listing_id",
        "select transaction_id, null from transactions where activity = 'immovable_property' and listing_id is null",
    ),
    Check(
        "transaction.listing_not_property",
        "transactions",
        "listing_id and rented_days are for immovable_property only",
        "select transaction_id, activity from transactions where activity <> 'immovable_property' "
        "and (listing_id is not null or rented_days is not null)",
    ),
    Check(
        "transaction.unknown_listing",
        "transactions",
        "listing_id is not a property listing of this seller",
        "select t.transaction_id, t.listing_id from transactions t "
        "left join property_listings p on p.listing_id = t.listing_id and p.seller_id = t.seller_id "
        "where t.listing_id is not null and p.listing_id is null",
    ),
    Check(
        "transaction.rented_days",
        "transactions",
        "rented_days must be >= 0",
        "select transaction_id, null from transactions where rented_days < 0",
    ),
    Check(
        "refund.negative_amount",
        "refunds",
        "refund amounts must be integers >= 0",
        "select refund_id, null from refunds where amount_minor is null or amount_minor < 0 "
        "or coalesce(fee_minor, 0) < 0 or coalesce(tax_minor, 0) < 0",
    ),
    Check(
        "refund.exceeds_transaction",
        "refunds",
        "this refund alone is larger than its transaction",
        "select r.refund_id, 'transaction ' || r.transaction_id from refunds r "
        "join transactions t using (transaction_id) where r.amount_minor > t.amount_minor "
        "or coalesce(r.fee_minor, 0) > coalesce(t.fee_minor, 0) "
        "or coalesce(r.tax_minor, 0) > coalesce(t.tax_minor, 0)",
        refunded=True,
    ),
    Check(
        "refund.total_exceeds_transaction",
        "transactions",
        "its refunds together exceed the transaction",
        "with s as (select transaction_id, sum(amount_minor) a, sum(coalesce(fee_minor, 0)) f, "
        "sum(coalesce(tax_minor, 0)) x, string_agg(refund_id, ', ' order by refund_id) ids, count(*) n "
        "from refunds group by transaction_id) "
        "select t.transaction_id, 'refunds ' || s.ids from transactions t join s using (transaction_id) "
        "where s.n > 1 and (s.a > t.amount_minor or s.f > coalesce(t.fee_minor, 0) "
        "or s.x > coalesce(t.tax_minor, 0))",
        refunded=True,
    ),
    Check(
        "refund.before_payment",
        "refunds",
        "the refund is dated before its transaction was paid: nothing can be refunded before it is paid, "
        "so one of the two times is wrong; correct refunded_at or paid_at (the seller is not reported "
        "until then: applying the refund, or not, would each report a figure that may be false)",
        "select r.refund_id, case when r.refunded_at < (select min(utc_start) from local_days "
        "where local_date = (select min(local_date) + 1 from local_days)) "
        "then 'dated in an earlier reporting year than the payment' end "
        "from refunds r join transactions t using (transaction_id) where r.refunded_at < t.paid_at",
        refunded=True,
    ),
    Check(
        "transaction.amount_overflow",
        "transactions",
        "the amounts of this transaction's seller add up beyond what is counted exactly (2^63 - 1 minor "
        "units, with a margin of 1000 for conversion): no real seller sells this much, a unit or data "
        "error in the source is likely; correct amount_minor, fee_minor or tax_minor. The totals cannot "
        "be aggregated, so the run stops",
        "select arg_max(transaction_id, greatest(amount_minor, coalesce(fee_minor, 0), coalesce(tax_minor, 0))), "
        "'seller ' || seller_id from transactions group by seller_id "
        f"having sum(amount_minor::hugeint) > {MAX_SELLER_TOTAL} "
        f"or sum(coalesce(fee_minor, 0)::hugeint) > {MAX_SELLER_TOTAL} "
        f"or sum(coalesce(tax_minor, 0)::hugeint) > {MAX_SELLER_TOTAL}",
        whole_run=True,
    ),
    Check(
        "refund.amount_overflow",
        "refunds",
        "the refunds of this refund's seller add up beyond what is counted exactly (2^63 - 1 minor units, "
        "with a margin of 1000 for conversion): a unit or data error in the source is likely; correct the "
        "refunds. The totals cannot be aggregated, so the run stops",
        "select arg_max(r.refund_id, greatest(r.amount_minor, coalesce(r.fee_minor, 0), coalesce(r.tax_minor, 0))), "
        "'seller ' || t.seller_id from refunds r join transactions t using (transaction_id) group by t.seller_id "
        f"having sum(r.amount_minor::hugeint) > {MAX_SELLER_TOTAL} "
        f"or sum(coalesce(r.fee_minor, 0)::hugeint) > {MAX_SELLER_TOTAL} "
        f"or sum(coalesce(r.tax_minor, 0)::hugeint) > {MAX_SELLER_TOTAL}",
        whole_run=True,
        refunded=True,
    ),
    Check(
        "fx.bad_rate",
        "fx_rates",
        "units_per_eur must be a positive decimal",
        "select currency || ' ' || cast(rate_date as varchar), units_per_eur from fx_rates "
        "where try_cast(units_per_eur as decimal(38, 12)) is null "
        "or try_cast(units_per_eur as decimal(38, 12)) <= 0",
    ),
)

MISSING_RATE_SQL = """
with used as (
    select currency, min(transaction_id) as example
    from transactions
    where currency <> 'EUR' and currency in (select code from payment_currencies)
    group by currency
)
select u.currency, u.example
from used u
where not exists (
    select 1 from fx_rates f where f.currency = u.currency and f.rate_date <= ?
)
order by u.currency
"""


PAYMENT_DATE_MISSING_RATE_SQL = """
with tx as (
    select t.transaction_id, t.currency, d.local_date
    from transactions as t
    asof left join local_days as d on t.paid_at >= d.utc_start
    where t.currency <> 'EUR' and t.currency in (select code from payment_currencies)
),

missing as (
    select * from tx
    where not exists (
        select 1 from fx_rates f where f.currency = tx.currency and f.rate_date <= tx.local_date
    )
)

select currency, min(local_date), min(transaction_id), count(*)
from missing
group by currency
order by currency
"""


def run_checks(run_dir: Path, period: Period, fx_basis: str = "year_end") -> list[Finding]:
    """Run every extract check over the staged Parquet files. A finding in a row that belongs
    to a seller names that seller (``seller_id``), so that the seller can be quarantined; the
    others (exchange rates) concern the whole run."""
    con = connect(run_dir, "extract")
    register_local_days(con, period)
    try:
        refunded = _refunded_connection(run_dir, period)
        try:
            findings = _run(con, refunded)
        finally:
            refunded.close()
        if fx_basis == "payment_date":
            for currency, day, example, n in con.execute(PAYMENT_DATE_MISSING_RATE_SQL).fetchall():
                findings.append(
                    Finding(
                        rule="fx.missing_rate",
                        table="fx_rates",
                        key=f"{currency} on or before {day}",
                        message=f"no rate for {currency} on or before the payment date {day} "
                        f"({n} transaction(s), e.g. {example}); load the ECB rates. The pipeline "
                        "never assumes a rate",
                    )
                )
            return findings
        year_end = date(period.year, 12, 31)
        for currency, example in con.execute(MISSING_RATE_SQL, [year_end]).fetchall():
            findings.append(
                Finding(
                    rule="fx.missing_rate",
                    table="fx_rates",
                    key=f"{currency} on or before {year_end}",
                    message=f"no rate for {currency} on or before {year_end}; transactions in {currency} "
                    f"(e.g. {example}) cannot be converted. Load the ECB rate; the pipeline never "
                    "assumes a rate",
                )
            )
        return findings
    finally:
        con.close()


#: How the row key of each table leads to its seller.
SELLER_OF = {
    "sellers": "select k, d, k from c",
    "seller_tins": "select k, d, k from c",
    "transactions": "select c.k, c.d, t.seller_id from c left join transactions t on t.transaction_id = c.k",
    "refunds": (
        "select c.k, c.d, t.seller_id from c left join refunds r on r.refund_id = c.k "
        "left join transactions t on t.transaction_id = r.transaction_id"
    ),
    "property_listings": "select c.k, c.d, p.seller_id from c left join property_listings p on p.listing_id = c.k",
}


def _refunded_connection(run_dir: Path, period: Period) -> duckdb.DuckDBPyConnection:
    """A connection like the checks' own, where ``transactions`` holds only the transactions that
    some refund names (every row of each such id, duplicates too). A check joining the refunds to
    their transactions finds the same rows there as over every transaction, and the checks that do
    (:attr:`Check.refunded`) scan the transactions once together instead of once each."""
    con = connect(run_dir, "extract")
    try:
        register_local_days(con, period)
        con.execute(
            "create table refunded_transactions as select * from transactions "
            "where transaction_id in (select transaction_id from refunds)"
        )
        con.execute("create or replace view transactions as select * from refunded_transactions")
    except BaseException:
        con.close()
        raise
    return con


def _run(con: duckdb.DuckDBPyConnection, refunded: duckdb.DuckDBPyConnection | None = None) -> list[Finding]:
    """Every check of :data:`CHECKS` in order; with ``refunded`` (:func:`_refunded_connection`),
    those of :attr:`Check.refunded` there."""
    findings: list[Finding] = []
    for check in CHECKS:
        no_seller = "select k, d, null from c"
        seller = no_seller if check.whole_run else SELLER_OF.get(check.table, no_seller)
        where = refunded if check.refunded and refunded is not None else con
        rows = where.execute(f"with c as (select * from ({check.sql}) as x(k, d)) {seller} order by 1").fetchall()
        for key, detail, seller_id in rows:
            message = check.message if detail is None else f"{check.message} ({detail})"
            findings.append(
                Finding(rule=check.rule, table=check.table, key=str(key), message=message, seller_id=seller_id)
            )
    return findings
