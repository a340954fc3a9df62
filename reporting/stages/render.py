"""Render: one DPI message per receiving authority, streamed to staging.

Sellers are read from the staged decisions in seller_id order, in batches, and written one by
one: memory does not grow with the number of sellers.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, overload

from reporting import ibancheck
from reporting.authorities import select_profile
from reporting.authorities.base import AuthorityProfile, Doc, DocIds
from reporting.errors import DataError
from reporting.findings import Finding
from reporting.ledger import (
    DELETION,
    OTHER_PLATFORM_OPERATORS,
    PLATFORM_OPERATOR,
    PO_KEY,
    PROFILE_KINDS,
    RESEND,
    SELLER,
    Ledger,
    LedgerError,
    PlannedMessage,
    PlannedRecord,
    RecordKey,
    content_hash,
    open_ledger,
    plan_filing,
)
from reporting.records import (
    ActivityFigures,
    FinancialAccount,
    MessageHeader,
    OperatorRecord,
    PostalAddress,
    SellerRecord,
    Tin,
    operator_content,
    seller_content,
    seller_from_content,
)
from reporting.results import AuthorityRendered, Rendered, RenderedMessage
from reporting.rules import ACTIVITY_ORDER
from reporting.settings import RunSettings, read_json, write_json
from reporting.stages.plan import discard_pending, plan, planned_authorities, stage_ledger
from reporting.staging import connect, sql_literal
from reporting.text import text_problem
from reporting.variants import EU_READING, LegalVariant, reading_for, reports_financial_identifier

log = logging.getLogger(__name__)

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
    op = settings.config.operator
    return OperatorRecord(
        name=op.name,
        tin=op.tin,
        tin_issued_by=op.tin_issued_by,
        nexus=op.nexus,
        res_country=op.address.country,
        vat=op.vat,
        platform_business_name=op.platform_business_name,
        address=PostalAddress(
            country=op.address.country,
            city=op.address.city,
            street=op.address.street,
            building=op.address.building,
            post_code=op.address.post_code,
        ),
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
        if a["activity"] == "immovable_property":
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


@functools.lru_cache(maxsize=65_536)
def _is_iban(identifier: str) -> bool:
    """Whether an account identifier is an IBAN (then ``AccountNumberType="IBAN"``): asked again
    for every authority a seller goes to, so remembered. :func:`reporting.ibancheck.is_valid` is
    stdnum's ``iban.is_valid``, exactly (a property test proves it), in a fraction of its time;
    with a stdnum version it was not proven for, stdnum answers."""
    return ibancheck.is_valid(identifier)


def seller_record(row: dict[str, Any], this_year: int = 9999) -> tuple[SellerRecord, list[Finding]]:
    """Map one staged seller row to a record; findings for what the schema cannot carry."""
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

    country = row["address_country"] or row["residence_country"]
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
    activities = []
    for a in sorted(row["acts"], key=lambda a: (ACTIVITY_ORDER.index(a["activity"]), a["listing_id"])):
        address = None
        if a["activity"] == "immovable_property":
            address = PostalAddress(
                country=a["country"],
                city=a["city"],
                street=a["street"],
                building=a["building"],
                post_code=a["post_code"],
            )
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
        activities.append(
            ActivityFigures(
                activity=a["activity"],
                currency=a["currency"],
                listing_id=a["listing_id"],
                consideration=_four(a["cons"]),
                activities=_four(a["numb"]),
                fees=_four(a["fees"]),
                taxes=_four(a["tax"]),
                address=address,
                land_registration_number=a["land_registration_number"],
                property_type=a["property_type"],
                other_property_type=a["other_property_type"],
                rented_days=int(a["rented_days"] or 0),
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


def _records(
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
    ``shared``: read the rows from the table :func:`_share_seller_rows` made on ``con``."""
    if shared:
        reader = con.sql(SHARED_SELLERS_SQL, params={"authority": authority}).to_arrow_reader(5_000)
    else:
        reader = con.sql(SELLERS_SQL, params={"authority": authority}).to_arrow_reader(5_000)
    for batch in reader:
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
        property_states=[a["country"] for a in row["acts"] if a["activity"] == "immovable_property"],
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
SHARED_SELLERS_FILE = ".routed_seller_rows.parquet"  # in the render stage's folder, while it renders
#: One authority's rows of that table: :data:`SELLERS_SQL`'s columns, in its order.
SHARED_SELLERS_SQL = f"""
select * exclude (authorities) from {SHARED_SELLERS_TABLE}
where list_contains(authorities, $authority)
order by seller_id
"""


def _share_seller_rows(con: Any, path: Path) -> None:
    """Read every routed seller once for all the authorities of a render (a preview has 27):
    :data:`SELLERS_SQL` per authority reads and joins the staged files again each time (1.85 s
    in all at 30,000 sellers; 0.7 s for this file and the 27 readings of it). The rows of
    :data:`SELLERS_SQL`, with the authorities each goes to, are written to ``path`` (a Parquet
    file the caller deletes after the render), not kept in memory: the render's memory stays flat
    in the number of sellers."""
    con.execute(f"copy ({ALL_SELLERS_SQL}) to {sql_literal(path)} (format parquet, compression zstd)")
    con.execute(f"create temp view {SHARED_SELLERS_TABLE} as select * from read_parquet({sql_literal(path)})")


def record_problems(settings: RunSettings) -> list[Finding]:
    """What would stop the record of a routed seller from being rendered, for each of its
    receiving authorities: run by the rules stage, which quarantines those sellers, so that the
    render never meets them. The same checks as the render's (:func:`_records`), each seller read
    once: its record is built once per different set of account identifiers (they are left out
    for some receiving states), the profile's own checks run per authority."""
    con = connect(settings.run_path, "extract", "aggregate", "rules")
    findings: list[Finding] = []
    try:
        reading = reading_for(settings.filing_state)
        profiles: dict[str, AuthorityProfile] = {}
        this_year = settings.timestamp.year
        for batch in con.sql(ALL_SELLERS_SQL).to_arrow_reader(5_000):
            for row in batch.to_pylist():
                authorities = row.pop("authorities")
                built: dict[bool, tuple[SellerRecord, list[Finding]]] = {}  # by: accounts dropped
                for authority in authorities:
                    drop = _drops_accounts(row, authority, settings.preview, reading)
                    if drop not in built:
                        built[drop] = seller_record({**row, "accounts": None} if drop else row, this_year)
                    record, problems = built[drop]
                    if authority not in profiles:
                        profiles[authority] = select_profile(authority, settings.config)
                    findings += problems + _profile_problems(profiles[authority], record, authority)
    finally:
        con.close()
    return list(dict.fromkeys(findings))  # a problem found for several authorities: once


@overload
def render(settings: RunSettings, authority: None = None) -> Rendered: ...
@overload
def render(settings: RunSettings, authority: str) -> AuthorityRendered: ...


def render(settings: RunSettings, authority: str | None = None) -> Rendered | AuthorityRendered:
    """Write ``<run>/render/<authority>/<file>.xml``: for one authority (or every planned one),
    the messages that the filing ledger says are due (a first filing, additions, corrections,
    deletions, a nil report), each recorded in the ledger as rendered, not yet published.

    Per authority the result is ``render/authorities/<XX>.json``; rendering all of them also
    writes ``render/render.json`` with every message in order."""
    if authority is None:
        authorities = plan(settings)
        results: list[AuthorityRendered] = []
        if authorities:
            # one connection, and every seller read once, for all the authorities (a preview
            # has 27): 40 ms to connect and 70 ms to read per authority otherwise
            con = connect(settings.run_path, "extract", "aggregate", "rules")
            rows = settings.stage_dir("render") / SHARED_SELLERS_FILE
            try:
                shared = len(authorities) > 1
                if shared:
                    _share_seller_rows(con, rows)
                results = [_render_authority(settings, a, con, shared=shared) for a in authorities]
            finally:
                con.close()
                rows.unlink(missing_ok=True)  # personal data: kept no longer than the render
        summary: Rendered = {
            "messages": [m for r in results for m in r["messages"]],
            "discarded": [d for r in results for d in r["discarded"]],
        }
        write_json(settings.stage_dir("render") / "render.json", summary)
        log.info("render year=%s: %d message(s)", settings.year, len(summary["messages"]))
        return summary
    con = connect(settings.run_path, "extract", "aggregate", "rules")
    try:
        return _render_authority(settings, authority, con)
    finally:
        con.close()


def _render_authority(settings: RunSettings, authority: str, con: Any, *, shared: bool = False) -> AuthorityRendered:
    """:func:`render` of one authority, over an open connection to the staged data (``shared``:
    the rows of :func:`_share_seller_rows` are on it)."""
    findings: list[Finding] = []
    operator = operator_record(settings)
    with (
        stage_ledger(settings, authority) as url,
        open_ledger(url) as ledger,
        ledger.lock(settings.environment, authority, settings.year, holder=settings.run_id),
    ):
        discarded = discard_pending(settings, ledger, authority)
        messages = _render_one(settings, con, authority, operator, findings, ledger, shared=shared)
    if findings:
        raise DataError(findings)
    summary: AuthorityRendered = {"authority": authority, "messages": messages, "discarded": discarded}
    # an earlier validation of this authority's files says nothing of the files rendered now
    shutil.rmtree(settings.run_path / "validate" / "parts" / authority, ignore_errors=True)
    (settings.run_path / "validate" / "authorities" / f"{authority}.json").unlink(missing_ok=True)
    write_json(settings.stage_dir("render/authorities") / f"{authority}.json", summary)
    log.info("render year=%s authority=%s: %d message(s)", settings.year, authority, len(messages))
    return summary


def rendered(settings: RunSettings, authority: str | None = None) -> Rendered:
    """What the render wrote: for one authority, or for every planned one in order."""
    authorities = [authority] if authority else planned_authorities(settings)
    parts: list[AuthorityRendered] = [
        read_json(settings.run_path / "render" / "authorities" / f"{a}.json") for a in authorities
    ]
    return {
        "messages": [m for p in parts for m in p["messages"]],
        "discarded": [d for p in parts for d in p["discarded"]],
    }


def _render_one(
    settings: RunSettings,
    con: Any,
    authority: str,
    operator: OperatorRecord,
    findings: list[Finding],
    ledger: Ledger,
    *,
    shared: bool = False,
) -> list[RenderedMessage]:
    """The messages due to one authority: the difference between what is reportable now and
    what the ledger holds as filed, planned by :func:`reporting.ledger.plan_filing` (or a kind
    forced by ``settings.mode``). Each planned message is one file, or several parts where the
    profile limits the size or the sellers of a file (each part a message of its own, the
    PlatformOperator resent in the parts after the first). ``shared``: see :func:`_records`."""
    profile = select_profile(authority, settings.config)
    env, year = settings.environment, settings.year
    ids = replace(
        profile.doc_ids(settings.run_id, settings.config.operator.country, authority, year),
        identifiers=settings.identifiers(authority),
        environment=env,
    )
    current: dict[RecordKey, tuple[str, Any]] = {}
    po = operator_content(operator)
    current[PO_KEY] = (content_hash(po), po)
    records = _records(
        con,
        authority,
        profile,
        settings.timestamp.year,
        preview=settings.preview,
        reading=reading_for(settings.filing_state),
        shared=shared,
    )
    for record, problems in records:
        if problems:  # the rules stage quarantines such sellers: this is a safety net
            findings.extend(problems)
            continue
        content = seller_content(record)
        current[(SELLER, record.seller_id)] = (content_hash(content), content)
    live = ledger.live_records(env, authority, year)
    mode, sellers = settings.mode, settings.sellers
    if mode == "deletion" and sellers is not None:
        sellers = [s for s in sellers if (SELLER, s) in live]
        if not sellers:
            return []  # none of the named sellers was filed to this authority
    plan = plan_filing(
        current,
        live,
        profile_expects_nil=profile.expects_nil,
        new_id=lambda purpose: profile.doc_ref_id(ids, purpose),
        environment=env,
        mode=mode,
        sellers=sellers if mode == "deletion" else None,
        authority=authority,
        year=year,
        indic=lambda doc_type, e: profile.doc_type_indic(PROFILE_KINDS[doc_type], e),
    )
    problems = ledger.problems(plan, environment=env, authority=authority, year=year)
    if problems:
        raise LedgerError(
            f"the plan for {authority} {year} ({env}) breaks the rules the authority applies on receipt: "
            + "; ".join(f"[{code}] {text}" for code, text in problems)
        )
    target_dir = settings.stage_dir(f"render/{authority}")
    rendered: list[RenderedMessage] = []
    for planned in plan:
        for part in _parts(profile, planned, operator, env):
            rendered.append(
                _write_message(settings, profile, ids, authority, operator, part, len(rendered) + 1, target_dir, ledger)
            )
    for m in rendered:
        m["parts"] = len(rendered)
    return rendered


def _parts(
    profile: AuthorityProfile, planned: PlannedMessage, operator: OperatorRecord, env: str
) -> list[PlannedMessage]:
    """A planned message as the files the profile takes: itself, or parts of at most
    ``max_sellers_per_file`` sellers and ``max_file_bytes`` bytes, the PlatformOperator resent
    (OECD0) in every part after the first."""
    if not (profile.max_sellers_per_file or profile.max_file_bytes) or not planned.sellers:
        return [planned]
    po = planned.platform_operator
    if po.doc_type == DELETION:
        raise LedgerError("a withdrawal of the whole filing cannot be split into parts")
    header = MessageHeader("XX", "XX", "X" * 40, planned.message_type_indic, date(2000, 12, 31), datetime(2000, 1, 1))
    records = ((seller_from_content(r.content), _doc(r)) for r in planned.sellers)
    by_id = {r.seller_key: r for r in planned.sellers}
    findings: list[Finding] = []
    batches = list(
        _split(
            profile,
            header,
            operator,
            _doc(po),
            records,
            profile.max_sellers_per_file,
            profile.max_file_bytes,
            findings,
        )
    )
    if findings:
        raise DataError(findings)
    resend = PlannedRecord(
        kind=PLATFORM_OPERATOR,
        seller_key=None,
        doc_type=RESEND,
        doc_type_indic=profile.doc_type_indic(PROFILE_KINDS[RESEND], env),
        doc_ref_id=po.doc_ref_id,
        corr_doc_ref_id=None,
        content_hash=po.content_hash,
        content=po.content,
    )
    others = [r for r in planned.records if r.kind == OTHER_PLATFORM_OPERATORS]
    return [
        replace(planned, records=(po if i == 0 else resend, *others, *(by_id[rec.seller_id] for rec, _ in batch)))
        for i, batch in enumerate(batches)
        if batch
    ]


def _doc(r: PlannedRecord) -> Doc:
    return (
        (r.doc_type_indic, r.doc_ref_id, r.corr_doc_ref_id) if r.corr_doc_ref_id else (r.doc_type_indic, r.doc_ref_id)
    )


def _write_message(
    settings: RunSettings,
    profile: AuthorityProfile,
    ids: DocIds,
    authority: str,
    operator: OperatorRecord,
    planned: PlannedMessage,
    number: int,
    target_dir: Path,
    ledger: Ledger,
) -> RenderedMessage:
    """One file of one planned message, written atomically and recorded in the ledger as
    rendered (its ids are used from now on, whether it is published or discarded)."""
    env = settings.environment
    h = MessageHeader(
        transmitting_country=ids.transmitting_country,
        receiving_country=authority,
        message_ref_id=profile.message_ref_id(ids, number),
        message_type_indic=planned.message_type_indic,
        reporting_period=date(settings.year, 12, 31),
        timestamp=profile.message_timestamp(settings.timestamp),
        environment=env,
        identifiers=settings.identifiers(authority),
        transfer_id=ids.unique("transfer", authority, str(number)),
    )
    name = profile.file_name(h)
    tmp = target_dir / f".{name}.tmp"
    sellers = ((seller_from_content(r.content), _doc(r)) for r in planned.sellers)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            count = profile.write(fh, h, operator, _doc(planned.platform_operator), sellers)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written file (it would hold personal data)
        raise
    path = target_dir / name
    tmp.replace(path)
    sha256 = file_sha256(path)
    ledger.record_message(
        planned,
        message_ref_id=h.message_ref_id,
        authority=authority,
        operator=f"{settings.config.operator.tin_issued_by}:{settings.config.operator.tin}",
        year=settings.year,
        environment=env,
        file_name=f"{authority}/{name}",
        sha256=sha256,
        run_id=settings.run_id,
        transfer_id=h.transfer_id,
        created=settings.timestamp,
    )
    kinds: dict[str, int] = {}
    for r in planned.sellers:
        kinds[r.doc_type] = kinds.get(r.doc_type, 0) + 1
    return {
        "authority": authority,
        "profile": profile.code,
        "edition": profile.edition,
        "schema": profile.schema_resource,
        "message_ref_id": h.message_ref_id,
        "message_type_indic": h.message_type_indic,
        "file": f"{authority}/{name}",
        "sellers": count,
        "records": kinds,
        "platform_operator": planned.platform_operator.doc_type,
        "part": number,
        "sha256": sha256,
    }


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _size(
    profile: Any,
    header: MessageHeader,
    operator: OperatorRecord,
    doc: Doc,
    records: list[tuple[SellerRecord, Doc]],
) -> int:
    buf = io.BytesIO()
    profile.write(buf, header, operator, doc, records)
    return len(buf.getvalue())


def _split(
    profile: Any,
    header: MessageHeader,
    operator: OperatorRecord,
    operator_doc: Doc,
    records: Iterable[tuple[SellerRecord, Doc]],
    max_sellers: int | None,
    max_bytes: int | None,
    findings: list[Finding],
) -> Iterator[list[tuple[SellerRecord, Doc]]]:
    """Batches of sellers that each fit a file: at most ``max_sellers``, and at most
    ``max_bytes`` once written (each seller's exact size is measured by writing it once; a part's
    sellers are held in memory until the part is written, so its size bounds the memory)."""
    empty = _size(profile, header, operator, operator_doc, []) if max_bytes else 0
    batch: list[tuple[SellerRecord, Doc]] = []
    size = empty
    for rec in records:
        n = _size(profile, header, operator, operator_doc, [rec]) - empty if max_bytes else 0
        if max_bytes and empty + n > max_bytes:
            findings.append(
                Finding(
                    rule="file.seller_exceeds_file_limit",
                    table="sellers",
                    key=rec[0].seller_id,
                    seller_id=rec[0].seller_id,
                    message=f"this seller alone needs {empty + n} bytes; the authority's files hold {max_bytes}",
                )
            )
            continue
        if batch and ((max_sellers and len(batch) >= max_sellers) or (max_bytes and size + n > max_bytes)):
            yield batch
            batch, size = [], empty
        batch.append(rec)
        size += n
    yield batch
