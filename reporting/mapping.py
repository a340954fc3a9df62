"""Record mapping: a staged seller row becomes the :class:`~reporting.records.SellerRecord` an
authority receives (:func:`seller_record`), the operator's configuration its
:class:`~reporting.records.OperatorRecord` (:func:`operator_record`), with the findings for what
the schema cannot carry.

Shared by the audit (:mod:`reporting.stages.audit`: :func:`record_problems` finds, before the
render, every seller whose record could not be rendered) and the render
(:mod:`reporting.stages.render`: :func:`seller_records`), so that both build and check the same
records, and neither imports the other. :data:`SELLERS_SQL` reads one authority's routed sellers
from the staged files; :data:`ALL_SELLERS_SQL` every routed seller once, with its authorities.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reporting import cyclic_gc, ibancheck
from reporting.authorities import select_profile
from reporting.authorities.base import AuthorityProfile, DpiWriter
from reporting.config import Address, Operator, OtherOperator
from reporting.errors import DataError
from reporting.findings import Finding
from reporting.records import (
    ActivityFigures,
    FinancialAccount,
    OperatorRecord,
    OtherOperatorRecord,
    PostalAddress,
    SellerRecord,
    Tin,
)
from reporting.settings import RunSettings
from reporting.staging import connect, seller_ranges, sql_literal
from reporting.text import text_problem
from reporting.variants import EU_READING, LegalVariant, reading_for, reports_financial_identifier
from reporting.vocabulary import ACTIVITY_ORDER, ASSUMED, ASSUMING, PROPERTY

SELLERS_SQL = """
with routed as (
    select seller_id from routing where authority = $authority
),

tins as (
    select seller_id, list(distinct struct_pack(tin := tin, issued_by := issued_by)) as tins
    from seller_tins
    where seller_id in (select seller_id from routed) and tin is not null
    group by seller_id
),

accounts as (
    select seller_id, list(distinct struct_pack(
        identifier := identifier, holder := account_holder_name)) as accounts
    from seller_financial_accounts
    where seller_id in (select seller_id from routed) and identifier is not null
    group by seller_id
),

pes as (
    select
        seller_id,
        list(distinct country) as countries,
        list(distinct struct_pack(
            country := country, street := address_street, building := address_building,
            post_code := address_post_code, city := address_city
        )) as addresses
    from seller_permanent_establishments
    where seller_id in (select seller_id from routed) and country in (select code from eu_states)
    group by seller_id
),

land_registration as (
    -- a merged listing carries the land registration numbers of all its units
    select
        k.listing_key,
        string_agg(distinct p.land_registration_number, ', ' order by p.land_registration_number) as numbers
    from listing_keys as k
    inner join property_listings as p on p.listing_id = k.listing_id
    group by k.listing_key
),

acts as (
    select x.seller_id, list(struct_pack(
        activity := x.activity, listing_id := x.listing_id, currency := x.currency,
        cons := [x.cons_q1, x.cons_q2, x.cons_q3, x.cons_q4],
        numb := [x.numb_q1, x.numb_q2, x.numb_q3, x.numb_q4],
        fees := [x.fees_q1, x.fees_q2, x.fees_q3, x.fees_q4],
        tax := [x.tax_q1, x.tax_q2, x.tax_q3, x.tax_q4],
        rented_days := x.rented_days,
        street := p.address_street, building := p.address_building,
        post_code := p.address_post_code, city := p.address_city, country := p.address_country,
        land_registration_number := lr.numbers,
        property_type := p.property_type, other_property_type := p.other_property_type
    )) as acts
    from reported as x
    left join property_listings as p on p.listing_id = x.listing_id and x.listing_id <> ''
    left join land_registration as lr on lr.listing_key = x.listing_id and x.listing_id <> ''
    where x.seller_id in (select seller_id from routed)
    group by x.seller_id
),

final as (
    select
        s.*, d.residence_countries, t.tins, a.accounts, pe.countries as pe_countries,
        pe.addresses as pe_addresses, ac.acts
    from sellers as s
    inner join routed as r on r.seller_id = s.seller_id
    inner join decisions as d on d.seller_id = s.seller_id
    inner join acts as ac on ac.seller_id = s.seller_id
    left join tins as t on t.seller_id = s.seller_id
    left join accounts as a on a.seller_id = s.seller_id
    left join pes as pe on pe.seller_id = s.seller_id
)

select * from final order by seller_id
"""


def operator_record(settings: RunSettings) -> OperatorRecord:
    """The PlatformOperator of the operator's messages. ``AssumedReporting`` is true when another
    operator assumes its reporting (``[assuming_operator]``): it then reports no seller (OECD XSD
    annotation of AssumedReporting; reference §2.8)."""
    op = settings.config.operator
    return OperatorRecord(
        name=op.name,
        tin=op.tin,
        tin_issued_by=op.tin_issued_by,
        nexus=op.nexus,
        res_country=op.address.country,
        vat=op.vat,
        platform_business_name=op.platform_business_name,
        address=_postal(op.address),
        assumed_reporting=op.assuming_operator is not None,
    )


def other_operator_records(operator: Operator) -> tuple[OtherOperatorRecord, ...]:
    """The OtherPlatformOperators of the operator's messages: the operators whose reporting it
    assumes (``[[assumed_operators]]``, in the order of the file), or the one that assumes its own
    (``[assuming_operator]``). ResCountryCode is the country of the other operator's address, its
    registered office (the NAV annotation of OtherRPO_Type: the state of tax residence, else of
    incorporation, place of management or permanent establishment; the configuration does not
    tell them apart). The ledger key holds the role (``assumed:FR-...``): an operator that turns
    from assumed to assuming is another record, its old one deleted, never corrected into the
    other element."""

    def record(role: str, other: OtherOperator) -> OtherOperatorRecord:
        return OtherOperatorRecord(
            role=role,
            key=f"{role}:{other.key}",
            name=other.name,
            tin=other.tin,
            tin_issued_by=other.tin_issued_by,
            res_country=other.address.country,
            address=_postal(other.address),
        )

    if operator.assuming_operator is not None:
        return (record(ASSUMING, operator.assuming_operator),)
    return tuple(record(ASSUMED, other) for other in operator.assumed_operators)


def _postal(address: Address) -> PostalAddress:
    return PostalAddress(
        country=address.country,
        city=address.city,
        street=address.street,
        building=address.building,
        post_code=address.post_code,
    )


#: Identity columns that go into the XML as text (max. 200 characters in the DPI schema).
TEXT_COLUMNS = (
    "first_name",
    "last_name",
    "legal_name",
    "birth_city",
    "address_street",
    "address_building",
    "address_post_code",
    "address_city",
    "vat_id",
    "business_registration_number",
)


def _texts(row: dict[str, Any]) -> Iterator[tuple[str, str, str, str | None]]:
    """Every text of a seller that goes into the XML: (table, row key, column, value)."""
    sid = row["seller_id"]
    for column in TEXT_COLUMNS:
        yield "sellers", sid, column, row.get(column)
    for t in row["tins"] or []:
        yield "seller_tins", sid, "tin", t["tin"]
    for a in row["accounts"] or []:
        yield "seller_financial_accounts", sid, "identifier", a["identifier"]
        yield "seller_financial_accounts", sid, "account_holder_name", a["holder"]
    for a in row["acts"]:
        if a["activity"] == PROPERTY:
            for column in (
                "street",
                "building",
                "post_code",
                "city",
                "land_registration_number",
                "other_property_type",
            ):
                yield "property_listings", a["listing_id"], column, a[column]


def _four(values: list[int]) -> tuple[int, int, int, int]:
    return (int(values[0]), int(values[1]), int(values[2]), int(values[3]))


#: The staged file the records' figures are read from (the rules stage's), as an error names it.
REPORTED_FILE = "rules/reported.parquet"
#: Its columns that a record holds as integers (minor units, counts, days).
FIGURE_COLUMNS = (*(f"{name}_q{q}" for name in ("cons", "numb", "fees", "tax") for q in range(1, 5)), "rented_days")
#: The rule an error about them names.
FIGURE_RULE = "staged.figure_not_integer"


def _figure_error(key: str, seller_id: str | None, what: str) -> DataError:
    """The error that stops a run at a staged figure a record cannot hold: the file, the row's key
    and the rule, never the value (a text where a figure belongs may be anything)."""
    finding = Finding(
        rule=FIGURE_RULE,
        table=REPORTED_FILE,
        key=key,
        seller_id=seller_id,
        message=f"{what}; a reported figure is a whole number (minor units, a count, days): the staged file is "
        "damaged or was not written by this version's rules stage, run the rules stage again",
    )
    return DataError([finding], headline=f"a staged figure that no record can hold ({FIGURE_RULE})")


def check_figure_types(con: Any) -> None:
    """Raise :class:`DataError` when a figure column of the staged ``reported`` table is not of an
    integer type (text or floating point: a record holds whole numbers only). Asked of the file's
    schema, before any row is read: DuckDB would refuse a text column mixed with numbers in the
    quarter lists with its own words, and a floating-point one would be cut to integers silently."""
    types = dict(con.execute("select column_name, column_type from (describe reported)").fetchall())
    for column in FIGURE_COLUMNS:
        kind = types.get(column)
        if kind is not None and kind not in _INTEGER_TYPES:
            raise _figure_error(column, None, f"the column {column} is of type {kind}, not an integer type")


_INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
)


def _activity_figures(sid: str, a: dict[str, Any]) -> dict[str, Any]:
    """The figures of one staged activity as its record holds them; a value that is not a whole
    number (a NULL, or a text where the file's types allow one) is a :class:`DataError` naming
    the row and the column (never a bare ``TypeError`` from ``int``)."""
    try:
        return {
            "consideration": _four(a["cons"]),
            "activities": _four(a["numb"]),
            "fees": _four(a["fees"]),
            "taxes": _four(a["tax"]),
            "rented_days": int(a["rented_days"] or 0),
        }
    except (TypeError, ValueError, IndexError):
        pass
    key = f"{sid}/{a['activity']}/{a['listing_id'] or '-'}/{a['currency']}"
    for name in _QUARTERS:
        quarters = a[name]
        if quarters is None or len(quarters) < 4:
            raise _figure_error(key, sid, f"the quarters of {name}_q1 ... {name}_q4 are missing") from None
        for q, value in enumerate(quarters, 1):
            if not _whole(value):
                what = "missing (NULL)" if value is None else f"not a whole number (a {type(value).__name__})"
                raise _figure_error(key, sid, f"{name}_q{q} is {what}") from None
    if not _whole(a["rented_days"] or 0):
        raise _figure_error(key, sid, f"rented_days is not a whole number (a {type(a['rented_days']).__name__})")
    raise _figure_error(key, sid, "a figure is not a whole number") from None  # pragma: no cover - found above


def _whole(value: Any) -> bool:
    if isinstance(value, int):
        return True
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=65_536)
def _is_iban(identifier: str) -> bool:
    """Whether an account identifier is an IBAN (then ``AccountNumberType="IBAN"``): asked again
    for every authority a seller goes to, so remembered. :func:`reporting.ibancheck.is_valid` is
    stdnum's ``iban.is_valid``, exactly (a property test proves it), in a fraction of its time;
    with a stdnum version it was not proven for, stdnum answers."""
    return ibancheck.is_valid(identifier)


def _sorted_acts(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The seller's activities in the order of its record: by kind, then listing."""
    return sorted(row["acts"], key=lambda a: (ACTIVITY_ORDER.index(a["activity"]), a["listing_id"]))


def _row_problems(row: dict[str, Any], acts: list[dict[str, Any]], this_year: int) -> list[Finding]:
    """What the schema cannot carry of one staged seller row, in the order :func:`seller_record`
    gives them: the findings of its record, without building it. ``acts``: the row's activities in
    the record's order (:func:`_sorted_acts`)."""
    sid = row["seller_id"]
    problems: list[Finding] = []

    def need(value: Any, column: str, rule: str) -> None:
        if value in (None, ""):
            problems.append(
                Finding(
                    rule=rule,
                    table="sellers",
                    key=sid,
                    seller_id=sid,
                    message=f"{column} is required to report this seller; complete it in the source",
                )
            )

    need(row["address_city"], "address_city", "seller.address_incomplete")
    if row["seller_type"] == "individual":
        need(row["first_name"], "first_name", "seller.name_missing")
        need(row["last_name"], "last_name", "seller.name_missing")
        need(row["birth_date"], "birth_date", "seller.birth_date_missing")
        if row["birth_date"] and not 1900 <= row["birth_date"].year <= this_year:
            problems.append(
                Finding(
                    rule="seller.birth_date_out_of_range",
                    table="sellers",
                    key=sid,
                    seller_id=sid,
                    message=f"birth_date must lie between 1900 and {this_year} (EU rule 40130); correct it",
                )
            )
        if not row["tins"]:
            need(row["birth_city"], "birth_city (no TIN: EU rule 40140)", "seller.birth_place_missing")
            need(row["birth_country"], "birth_country (no TIN: EU rule 40140)", "seller.birth_place_missing")
    else:
        need(row["legal_name"], "legal_name", "seller.name_missing")
    for table, key, column, value in _texts(row):
        problem = text_problem(value)
        if problem:
            problems.append(
                Finding(
                    rule="seller.text_not_reportable",
                    table=table,
                    key=key,
                    seller_id=sid,
                    message=f"{column} {problem}",
                )
            )
    for a in acts:
        if a["activity"] == PROPERTY:
            listing_problems = (
                (
                    a["property_type"] == "DPI910" and not a["other_property_type"],
                    "listing.other_property_type_missing",
                    "property_type DPI910 (Other) needs the text in other_property_type (EU rule 30050)",
                ),
                (
                    not a["city"],
                    "listing.address_incomplete",
                    "address_city is required for a reported Property Listing",
                ),
            )
            problems.extend(
                Finding(rule=rule, table="property_listings", key=a["listing_id"], seller_id=sid, message=message)
                for failed, rule, message in listing_problems
                if failed
            )
    return problems


def seller_record(row: dict[str, Any], this_year: int = 9999) -> tuple[SellerRecord, list[Finding]]:
    """Map one staged seller row to a record; findings for what the schema cannot carry
    (:func:`_row_problems`)."""
    sid = row["seller_id"]
    acts = _sorted_acts(row)
    problems = _row_problems(row, acts, this_year)
    country = row["address_country"] or row["residence_country"]
    activities = []
    for a in acts:
        address = None
        if a["activity"] == PROPERTY:
            address = PostalAddress(
                country=a["country"],
                city=a["city"],
                street=a["street"],
                building=a["building"],
                post_code=a["post_code"],
            )
        activities.append(
            ActivityFigures(
                activity=a["activity"],
                currency=a["currency"],
                listing_id=a["listing_id"],
                address=address,
                land_registration_number=a["land_registration_number"],
                property_type=a["property_type"],
                other_property_type=a["other_property_type"],
                **_activity_figures(sid, a),
            )
        )
    tins = tuple(
        sorted((Tin(t["tin"], t["issued_by"]) for t in (row["tins"] or [])), key=lambda t: (t.issued_by, t.value))
    )
    accounts = tuple(
        sorted(
            (
                FinancialAccount(a["identifier"], a["holder"], _is_iban(a["identifier"]))
                for a in (row["accounts"] or [])
            ),
            key=lambda a: a.identifier,
        )
    )
    record = SellerRecord(
        seller_id=sid,
        seller_type=row["seller_type"],
        res_countries=tuple(row["residence_countries"]),
        tins=tins,
        address=PostalAddress(
            country=country,
            city=row["address_city"],
            street=row["address_street"],
            building=row["address_building"],
            post_code=row["address_post_code"],
        ),
        activities=tuple(activities),
        first_name=row["first_name"],
        last_name=row["last_name"],
        legal_name=row["legal_name"],
        birth_date=row["birth_date"],
        birth_city=row["birth_city"],
        birth_country=row["birth_country"],
        vat=row["vat_id"],
        brn=row["business_registration_number"],
        accounts=accounts,
        permanent_establishments=tuple(sorted(row["pe_countries"] or [])),
        pe_addresses=tuple(
            sorted(
                (
                    PostalAddress(
                        country=p["country"],
                        city=p["city"],
                        street=p["street"],
                        building=p["building"],
                        post_code=p["post_code"],
                    )
                    for p in row["pe_addresses"] or []
                ),
                key=lambda a: (a.country, a.city or "", a.street or "", a.building or ""),
            )
        ),
    )
    return record, problems


def seller_records(
    con: Any,
    authority: str,
    profile: AuthorityProfile,
    this_year: int,
    *,
    preview: bool = False,
    reading: LegalVariant = EU_READING,
    shared: bool = False,
) -> Iterator[tuple[SellerRecord, list[Finding]]]:
    """Every seller routed to ``authority`` as the record it would receive, with what stops
    that record from being rendered (the shared checks, then the profile's own). The financial
    account identifier is left out where the seller's states of residence said they will not use
    it (and, in a preview, where the receiving state said so): :mod:`reporting.variants`.
    ``shared``: read the rows from the table :func:`share_seller_rows` made on ``con``."""
    if shared:
        readers = iter([con.sql(SHARED_SELLERS_SQL, params={"authority": authority}).to_arrow_reader(5_000)])
    else:
        readers = _ranged_readers(con, SELLERS_SQL, where="authority = $authority", params={"authority": authority})
    for batch in (b for reader in readers for b in reader):
        for row in batch.to_pylist():
            if _drops_accounts(row, authority, preview, reading):
                row["accounts"] = None
            record, problems = seller_record(row, this_year)
            yield record, problems + _profile_problems(profile, record, authority)


def _drops_accounts(row: dict[str, Any], authority: str, preview: bool, reading: LegalVariant) -> bool:
    """Whether the seller's account identifiers are left out of its record to ``authority``: its
    states of residence said they will not use them (in a preview, the receiving state too)."""
    return bool(row["accounts"]) and not reports_financial_identifier(
        row["residence_countries"] or (),
        authority if preview else None,
        property_states=[a["country"] for a in row["acts"] if a["activity"] == PROPERTY],
        reading=reading,
    )


def _profile_problems(profile: AuthorityProfile, record: SellerRecord, authority: str) -> list[Finding]:
    """The receiving authority's own reasons why the record cannot be rendered."""
    return [
        Finding(rule=rule, table=table, key=key, seller_id=record.seller_id, message=f"{message} ({authority})")
        for rule, table, key, message in profile.seller_problems(record)
    ]


def _replaced(sql: str, old: str, new: str) -> str:
    if old not in sql:  # SELLERS_SQL changed: the variant below must change with it
        raise AssertionError(f"SELLERS_SQL no longer holds {old!r}")
    return sql.replace(old, new)


#: :data:`SELLERS_SQL` for every routed seller at once, with the authorities it goes to: the record
#: checks read each seller once, not once per authority (27 queries for a preview otherwise).
ALL_SELLERS_SQL = _replaced(
    _replaced(
        SELLERS_SQL,
        "select seller_id from routing where authority = $authority",
        "select seller_id, list(distinct authority order by authority) as authorities from routing group by seller_id",
    ),
    "pe.addresses as pe_addresses, ac.acts",
    "pe.addresses as pe_addresses, ac.acts, r.authorities",
)


#: The view of :data:`ALL_SELLERS_SQL`'s rows that the authorities of one render share.
SHARED_SELLERS_TABLE = "routed_seller_rows"
#: One authority's rows of that table: :data:`SELLERS_SQL`'s columns, in its order.
SHARED_SELLERS_SQL = f"""
select * exclude (authorities) from {SHARED_SELLERS_TABLE}
where list_contains(authorities, $authority)
order by seller_id
"""


#: Routed sellers per reading of :data:`SELLERS_SQL` or :data:`ALL_SELLERS_SQL`: DuckDB builds
#: their lists in memory (it cannot spill a list aggregate), about 3.3 KB a seller (0.34 GB at
#: 104,094 sellers read at once), so the sellers are read in ranges of their ids, one after the
#: other: the same rows in the same order, in memory bounded whatever their number.
SELLERS_PER_READ = 25_000

#: How :data:`SELLERS_SQL` and :data:`ALL_SELLERS_SQL` select the routed sellers, where a range
#: of their ids is added.
_ROUTED = ("from routing where authority = $authority", "from routing group by seller_id")


def _ranged_readers(
    con: Any, sql: str, *, where: str = "true", params: dict[str, Any] | None = None, batch_rows: int = 5_000
) -> Iterator[Any]:
    """Arrow readers of ``sql`` (:data:`SELLERS_SQL` or :data:`ALL_SELLERS_SQL`) for consecutive
    ranges of the routed sellers' ids (those of ``routing`` where ``where`` holds), each of about
    :data:`SELLERS_PER_READ`; one after the other they give the rows of one reading, in its order.
    A figure column of ``reported`` that is not of an integer type raises :class:`DataError` first
    (:func:`check_figure_types`)."""
    check_figure_types(con)
    for low, high in seller_ranges(con, "routing", SELLERS_PER_READ, where=where, params=params):
        bounds = {k: v for k, v in (("low", low), ("high", high)) if v is not None}
        ranged = sql
        if bounds:
            cond = " and ".join({"low": "seller_id >= $low", "high": "seller_id < $high"}[k] for k in bounds)
            one, every = _ROUTED
            ranged = (
                sql.replace(one, f"{one} and {cond}", 1)
                if one in sql
                else _replaced(sql, every, f"from routing where {cond} group by seller_id")
            )
        yield con.sql(ranged, params={**(params or {}), **bounds} or None).to_arrow_reader(batch_rows)


def share_seller_rows(con: Any, path: Path) -> None:
    """Read every routed seller once for all the authorities of a render (a preview has 27):
    :data:`SELLERS_SQL` per authority reads and joins the staged files again each time (1.85 s
    in all at 30,000 sellers; 0.7 s for this file and the 27 readings of it). The rows of
    :data:`SELLERS_SQL`, with the authorities each goes to, are written to the folder ``path``
    (Parquet files, one per range of :func:`_ranged_readers`; the caller deletes the folder after
    the render), not kept in memory: the render's memory stays flat in the number of sellers."""
    import pyarrow.parquet as pq

    shutil.rmtree(path, ignore_errors=True)  # a crashed render's
    path.mkdir(mode=0o700)
    for i, reader in enumerate(_ranged_readers(con, ALL_SELLERS_SQL, batch_rows=20_000)):
        part = path / f"{i:05d}.parquet"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # personal data: owner-only
        with os.fdopen(fd, "wb") as fh, pq.ParquetWriter(fh, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
    files = sql_literal(path / "*.parquet")
    con.execute(f"create temp view {SHARED_SELLERS_TABLE} as select * from read_parquet({files})")


def record_problems(settings: RunSettings) -> list[Finding]:
    """What would stop the record of a routed seller from being rendered, for each of its
    receiving authorities: run by the audit (:mod:`reporting.stages.audit`), which quarantines
    those sellers, so that the render never meets them. The same checks as the render's
    (:func:`seller_records`), each seller read once (:func:`_batch_problems`)."""
    con = connect(settings.run_path, "extract", "aggregate", "rules")
    findings: list[Finding] = []
    try:
        reading = reading_for(settings.filing_state)
        profiles: dict[str, AuthorityProfile] = {}
        preview = settings.preview

        def profile_of(authority: str) -> AuthorityProfile:
            profile = profiles.get(authority)
            if profile is None:
                profile = profiles[authority] = select_profile(authority, settings.config)
            return profile

        def drops(row: dict[str, Any], authority: str) -> bool:
            return _drops_accounts(row, authority, preview, reading)

        with cyclic_gc.paused():  # the rows are made by the hundred thousand, none in a cycle
            for batch in (b for reader in _ranged_readers(con, ALL_SELLERS_SQL) for b in reader):
                findings += _batch_problems(batch, profile_of, drops, settings.timestamp.year)
    finally:
        con.close()
    return list(dict.fromkeys(findings))  # a problem found for several authorities: once


def _batch_problems(
    batch: Any,
    profile_of: Callable[[str], AuthorityProfile],
    drops: Callable[[dict[str, Any], str], bool],
    this_year: int,
) -> list[Finding]:
    """The problems of a batch of :data:`ALL_SELLERS_SQL`'s rows, for each seller and each of its
    authorities in turn: the seller's own (those of its record, :func:`seller_record`), then the
    authority's profile's (:func:`_profile_problems`); repeated where several authorities find the
    same (the caller keeps each once).

    A seller's own problems depend on its row only, and on whether its account identifiers are
    left out (``drops``): they are found once per such variant, without building the record
    (:func:`_row_problems`, the record's own checks). The record is built only for a profile that
    checks sellers itself (:func:`_checks_sellers`; a preview's EU generic edition does not), once
    per variant. A batch with a value the record cannot be built from (:func:`_records_buildable`)
    builds every record, so that it fails as the render would."""
    findings: list[Finding] = []
    build_all = not _records_buildable(batch)
    for row in batch.to_pylist():
        authorities = row.pop("authorities")
        acts: list[dict[str, Any]] | None = None  # sorted when first needed, as seller_record sorts them
        own: dict[bool, list[Finding]] = {}  # by: accounts dropped
        records: dict[bool, SellerRecord] = {}
        for authority in authorities:
            drop = drops(row, authority)
            if drop not in own:
                if acts is None:
                    acts = _sorted_acts(row)
                own[drop] = _row_problems({**row, "accounts": None} if drop else row, acts, this_year)
            findings += own[drop]
            profile = profile_of(authority)
            if build_all or _checks_sellers(profile):
                if drop not in records:
                    records[drop] = seller_record({**row, "accounts": None} if drop else row, this_year)[0]
                findings += _profile_problems(profile, records[drop], authority)
    return findings


def _checks_sellers(profile: AuthorityProfile) -> bool:
    """Whether ``profile`` has seller checks of its own: a ``seller_problems`` other than the
    DPI writer's, which finds nothing (the EU generic edition's, DE's, IT's, GB's)."""
    own = getattr(type(profile), "seller_problems", None) is not DpiWriter.seller_problems
    return own or "seller_problems" in getattr(profile, "__dict__", {})


#: The figures of an activity that its record holds as four integers (:func:`_four`).
_QUARTERS = ("cons", "numb", "fees", "tax")


def _records_buildable(batch: Any) -> bool:
    """Whether every record of ``batch`` builds once its own problems are found: none of the
    values :func:`seller_record` fails on beyond them (a missing quarterly figure, or fewer than
    four; missing states of residence; a TIN without its issuing state, which its sort may not
    compare). Staged data never has them; a batch that does builds every record, and fails there."""
    import pyarrow.compute as pc

    if batch.column("residence_countries").null_count:
        return False
    acts = batch.column("acts")
    if acts.null_count:
        return False
    figures = acts.values
    for name in _QUARTERS:
        quarters = figures.field(name)
        if quarters.null_count or quarters.values.null_count:
            return False
        if len(quarters) and pc.min(pc.list_value_length(quarters)).as_py() < 4:
            return False
    return not batch.column("tins").values.field("issued_by").null_count
