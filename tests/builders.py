"""A small marketplace builder for hand-computed test cases: rows in, a real database out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reporting.source import CONTRACT, create_schema, ddl_statements, make_engine, sql_text

OPERATOR_TOML = """
[operator]
name = "Demo Marketplace UAB"
tin = "304567891"
tin_issued_by = "LT"
vat = "LT100012345678"
platform_business_name = "Demo Market"
nexus = "RPONEX1"

[operator.address]
street = "Gedimino pr."
building = "1"
post_code = "01103"
city = "Vilnius"
country = "LT"

[reporting]
timezone = "{timezone}"
reporting_currency = "{currency}"
routing = "{routing}"
environment = "{environment}"
fx_basis = "{fx_basis}"
"""

#: Two further operators of a group, to append to the demo operator's configuration (the default
#: operator, in LT): ``lt2`` files in LT too (the same authority), ``de_gmbh`` in DE.
GROUP_TOML = """
[operators.lt2]
name = "Second Market UAB"
tin = "305555555"
tin_issued_by = "LT"
nexus = "RPONEX1"

[operators.lt2.address]
street = "Laisves al."
building = "2"
post_code = "44240"
city = "Kaunas"
country = "LT"

[operators.de_gmbh]
name = "Demo Marktplatz GmbH"
tin = "12345678901"
tin_issued_by = "DE"
vat = "DE123456789"
nexus = "RPONEX1"

[operators.de_gmbh.address]
street = "Unter den Linden"
building = "1"
post_code = "10117"
city = "Berlin"
country = "DE"

[operators.de_gmbh.authorities.DE]
bzst_id = "BZST0012345678"
"""


TWO_FILINGS_POID = "XMDPI0001234567"
#: ``[operators.uk_ltd]``: a UK company of the group filing with HMRC beside the EU operator
TWO_FILINGS_TOML = f"""
[operators.uk_ltd]
name = "Demo Market Ltd"
tin = "1234567890"
tin_issued_by = "GB"
nexus = "RPONEX1"

[operators.uk_ltd.address]
street = "Strand"
building = "1"
post_code = "WC2N 5HR"
city = "London"
country = "GB"

[operators.uk_ltd.authorities.GB]
platform_operator_id = "{TWO_FILINGS_POID}"
"""


def write_config(
    path: Path,
    *,
    timezone: str = "Europe/Vilnius",
    currency: str = "original",
    routing: str = "nexus",
    environment: str = "test",
    fx_basis: str = "year_end",
    data_docs: bool = False,
    max_quarantined: int | None = None,
    filing_state: str | None = None,
    nexus: str = "RPONEX1",
    extra: str = "",
) -> Path:
    """The demo operator (registered in LT) with these reporting settings, filing in
    ``filing_state`` (``operator.nexus_country``; default: LT, its address) with ``nexus``, and
    ``extra`` appended (e.g. the filing state's ``[authorities.XX]`` identifiers). Data Docs are
    off unless asked for: the checks run either way, and the HTML costs about a second per run."""
    quality = f"\n[quality]\ndata_docs = {'true' if data_docs else 'false'}\n"
    if max_quarantined is not None:
        quality += f"max_quarantined = {max_quarantined}\n"
    text = OPERATOR_TOML.format(
        timezone=timezone, currency=currency, routing=routing, environment=environment, fx_basis=fx_basis
    )
    operator = f'nexus = "{nexus}"' + (f'\nnexus_country = "{filing_state}"' if filing_state else "")
    text = text.replace('nexus = "RPONEX1"', operator)
    path.write_text(text + quality + extra, encoding="utf-8")
    return path


@dataclass
class Marketplace:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in CONTRACT})
    _n: int = 0

    def seller(
        self,
        seller_id: str,
        *,
        seller_type: str = "individual",
        country: str | None = "LT",
        tin: str | None = "39001010000",
        tin_issued_by: str | None = None,
        **kw: Any,
    ) -> str:
        row: dict[str, Any] = {
            "seller_id": seller_id,
            "seller_type": seller_type,
            "first_name": "Ona" if seller_type == "individual" else None,
            "last_name": "Petraite" if seller_type == "individual" else None,
            "legal_name": "Prekyba UAB" if seller_type == "entity" else None,
            "birth_date": date(1980, 5, 17) if seller_type == "individual" else None,
            "birth_city": "Kaunas" if seller_type == "individual" else None,
            "birth_country": "LT" if seller_type == "individual" else None,
            "residence_country": country,
            "address_street": "Laisves al.",
            "address_building": "10",
            "address_post_code": "44240",
            "address_city": "Kaunas",
            "address_country": country,
            "vat_id": None,
            "business_registration_number": "BRN-1" if seller_type == "entity" else None,
            "is_governmental": False,
            "is_listed": False,
        }
        row.update(kw)
        self.rows["sellers"].append(row)
        if tin:
            self.rows["seller_tins"].append({"seller_id": seller_id, "tin": tin, "issued_by": tin_issued_by or country})
        return seller_id

    def tin(self, seller_id: str, tin: str, issued_by: str) -> None:
        self.rows["seller_tins"].append({"seller_id": seller_id, "tin": tin, "issued_by": issued_by})

    def pe(self, seller_id: str, country: str) -> None:
        self.rows["seller_permanent_establishments"].append({"seller_id": seller_id, "country": country})

    def account(self, seller_id: str, identifier: str, holder: str | None = None) -> None:
        self.rows["seller_financial_accounts"].append(
            {"seller_id": seller_id, "identifier": identifier, "account_holder_name": holder}
        )

    def listing(self, listing_id: str, seller_id: str, country: str = "LT", **kw: Any) -> str:
        row: dict[str, Any] = {
            "listing_id": listing_id,
            "seller_id": seller_id,
            "address_street": "Pilies g.",
            "address_building": "3",
            "address_post_code": "01123",
            "address_city": "Vilnius",
            "address_country": country,
            "land_registration_number": None,
            "property_type": "DPI905",
            "other_property_type": None,
        }
        row.update(kw)
        self.rows["property_listings"].append(row)
        return listing_id

    def tx(
        self,
        seller_id: str,
        paid_at: str | datetime,
        amount_minor: int,
        *,
        activity: str = "sale_of_goods",
        currency: str = "EUR",
        fee_minor: int = 0,
        tax_minor: int = 0,
        listing_id: str | None = None,
        rented_days: int | None = None,
        transaction_id: str | None = None,
        operator_id: str | None = None,
    ) -> str:
        self._n += 1
        tid = transaction_id or f"T{self._n:07d}"
        self.rows["transactions"].append(
            {
                "transaction_id": tid,
                "seller_id": seller_id,
                "activity": activity,
                "listing_id": listing_id,
                "paid_at": _ts(paid_at),
                "currency": currency,
                "amount_minor": amount_minor,
                "fee_minor": fee_minor,
                "tax_minor": tax_minor,
                "rented_days": rented_days,
                "operator_id": operator_id,  # the optional column: None is [operator]'s
            }
        )
        return tid

    def sales(
        self, seller_id: str, n: int, amount_minor: int, *, start: str = "2025-05-01 10:00:00", **kw: Any
    ) -> list[str]:
        base = datetime.fromisoformat(start)
        return [
            self.tx(seller_id, base.replace(minute=i % 60, second=i // 60 % 60), amount_minor, **kw) for i in range(n)
        ]

    def refund(
        self,
        transaction_id: str,
        refunded_at: str,
        amount_minor: int,
        *,
        fee_minor: int = 0,
        tax_minor: int = 0,
        refund_id: str | None = None,
    ) -> str:
        self._n += 1
        rid = refund_id or f"R{self._n:07d}"
        self.rows["refunds"].append(
            {
                "refund_id": rid,
                "transaction_id": transaction_id,
                "refunded_at": _ts(refunded_at),
                "amount_minor": amount_minor,
                "fee_minor": fee_minor,
                "tax_minor": tax_minor,
            }
        )
        return rid

    def rate(self, currency: str, rate_date: str, units_per_eur: str) -> None:
        self.rows["fx_rates"].append(
            {"currency": currency, "rate_date": date.fromisoformat(rate_date), "units_per_eur": units_per_eur}
        )

    def write(self, url: str) -> str:
        engine = make_engine(url)
        try:
            create_schema(engine)
            meta = sa.MetaData()
            meta.reflect(engine)
            with engine.begin() as conn:
                for table, rows in self.rows.items():
                    if rows:
                        conn.execute(meta.tables[table].insert(), rows)
        finally:
            engine.dispose()
        return url


def vat_sellers(*numbers: str) -> Marketplace:
    """Individuals ``S1``, ``S2`` ... with the VAT numbers given and no TIN (their state issues
    none: ``tin_not_issued``, the place of birth stands in), each paid for one service in January
    2026: in the due-diligence scope, with one item to verify, their VAT number."""
    m = Marketplace()
    for n, number in enumerate(numbers, start=1):
        m.seller(f"S{n}", tin=None, vat_id=number, tin_not_issued=True)
        m.tx(f"S{n}", "2026-01-15 10:00:00", 50_000, activity="personal_services")
    return m


def with_due_diligence_columns(m: Marketplace) -> Marketplace:
    """Each seller row with the optional columns the due-diligence run reads (None where unset)."""
    from reporting.source import DUE_DILIGENCE_COLUMNS

    for row in m.rows["sellers"]:
        for column in DUE_DILIGENCE_COLUMNS["sellers"]:
            row.setdefault(column, None)
    return m


def due_diligence_day(
    config: Path, source: str, ledger: str, day: date, out: Path, work: Path, operator_id: str = "default"
) -> list[dict[str, Any]]:
    """One daily due-diligence run of ``day`` (at 04:00 UTC, as the DAG runs it) over ``source``
    into ``ledger``: the lines of the feed it wrote under ``out``."""
    from datetime import UTC, time

    from reporting.config import load_config
    from reporting.due_diligence import read_feed, run_due_diligence
    from reporting.ledger import open_ledger

    with open_ledger(ledger) as led:
        result = run_due_diligence(
            load_config(config),
            source_url=source,
            ledger=led,
            today=day,
            out_dir=out,
            work_root=work,
            now=datetime.combine(day, time(4), UTC),
            run_id=f"run-{day}",
            operator_id=operator_id,
        )
    return read_feed(Path(result.feed))


def write_loose(m: Marketplace, url: str, *, case_blind: bool = False, latin1: bool = False) -> str:
    """The marketplace in tables of the contract's columns without its constraints; on MariaDB
    with ``case_blind``, in the usual collation ('a' = 'A'), with ``latin1`` in MariaDB's old
    default character set."""
    engine = make_engine(url)
    try:
        ddl = re.sub(r",\s*PRIMARY KEY \([^)]*\)", "", sql_text("source_schema.sql"))
        ddl = ddl.replace("NOT NULL", "").replace("PRIMARY KEY", "")
        ddl = re.sub(r"\bCHAR\(\d\)", "VARCHAR(200)", ddl)  # room for codes written untidily
        if engine.dialect.name in ("mysql", "mariadb"):
            ddl = ddl.replace("TIMESTAMP", "DATETIME")
        with engine.begin() as conn:
            for stmt in ddl_statements(ddl):
                if case_blind and stmt.startswith("CREATE TABLE"):
                    stmt += " CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
                if latin1 and stmt.startswith("CREATE TABLE"):
                    stmt += " CHARACTER SET latin1 COLLATE latin1_swedish_ci"
                conn.exec_driver_sql(stmt)
            meta = sa.MetaData()
            meta.reflect(conn)
            for table, rows in m.rows.items():
                if rows:
                    conn.execute(meta.tables[table].insert(), rows)
    finally:
        engine.dispose()
    return url


def _ts(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def read_both_ways(
    url: str, table: str, sql: str, params: dict[str, Any], folder: Path
) -> tuple[Any, list[Any], Any, list[Any]]:
    """One extract query of ``table`` written through the DB-API and through the columnar read
    (the ``fast`` extra) into ``folder``: (DB-API table, its findings, columnar table, its findings)."""
    import pyarrow.parquet as pq

    from reporting.stages import extract

    engine = make_engine(url)
    columnar = extract.columnar_connection(sa.engine.make_url(url))
    assert columnar is not None, "the fast extra is not installed"
    plain: list[Any] = []
    fast: list[Any] = []
    try:
        with engine.connect() as conn:
            extract._stream_to_parquet(conn, table, sql, params, folder / "plain.parquet", plain)
            extract._stream_to_parquet(conn, table, sql, params, folder / "fast.parquet", fast, columnar)
    finally:
        columnar.close()
        engine.dispose()
    return pq.read_table(folder / "plain.parquet"), plain, pq.read_table(folder / "fast.parquet"), fast


def hmrc_bre(
    status: str,
    *,
    record_errors: list[tuple[str, list[str]]] | None = None,
    file_errors: list[str] | None = None,
    conversation: str = "c0ffee00-1234-4abc-8def-000000000001",
) -> bytes:
    """HMRC's business rule result (``BREResponse`` of its "AEOI Business Rule Result schema
    v0.3"): ``status`` Accepted or Rejected, file errors by code, record errors by code with the
    DocRefIds they name. Its local elements are unqualified, as the schema declares them."""
    from lxml import etree

    gsm = "http://www.hmrc.gsi.gov.uk/gsm"
    root = etree.Element(f"{{{gsm}}}BREResponse", nsmap={"gsm": gsm})
    common = etree.SubElement(root, "requestCommon")
    for tag, text in (
        ("receiptDate", "2026-01-21T08:00:00Z"),
        ("regime", "AEOI"),
        ("conversationID", conversation),
        ("schemaVersion", "1.0.0"),
    ):
        etree.SubElement(common, tag).text = text
    detail = etree.SubElement(etree.SubElement(root, "requestDetail"), "GenericStatusMessage")
    errors = etree.SubElement(detail, "ValidationErrors")
    for code in file_errors or []:
        e = etree.SubElement(errors, "FileError")
        etree.SubElement(e, "Code").text = code
        etree.SubElement(e, "Details").text = f"file error {code}"
    for code, refs in record_errors or []:
        e = etree.SubElement(errors, "RecordError")
        etree.SubElement(e, "Code").text = code
        etree.SubElement(e, "Details").text = f"record error {code}"
        for ref in refs:
            etree.SubElement(e, "DocRefIDInError").text = ref
    etree.SubElement(etree.SubElement(detail, "ValidationResult"), "Status").text = status
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def two_filings_market() -> Marketplace:
    """The sellers of the two-filing group run (tests/integration/test_group_two_filings.py tells
    who is in which filing, and why)."""
    svc = "personal_services"
    m = Marketplace()
    m.seller("UK_SVC", country="GB", tin="AB123456C", last_name="Smith")
    m.sales("UK_SVC", 2, 100_00, activity=svc)  # the EU operator's (no operator_id)
    m.sales("UK_SVC", 2, 150_00, activity=svc, start="2025-06-02 10:00:00", operator_id="uk_ltd")
    m.seller("UK_FLAT", country="GB", tin="CD123456E", last_name="Jones")
    m.listing("FLAT", "UK_FLAT", "LT")
    for day in ("2025-07-01", "2025-08-01"):
        m.tx("UK_FLAT", f"{day} 10:00:00", 400_00, activity="immovable_property", listing_id="FLAT", rented_days=3)
    m.seller("DE_SVC", country="DE", tin="12345678901", last_name="Schmidt")
    m.sales("DE_SVC", 2, 120_00, activity=svc)
    m.sales("DE_SVC", 2, 120_00, activity=svc, start="2025-06-02 10:00:00", operator_id="uk_ltd")
    m.seller("IE_SVC", country="IE", tin="1234567T", last_name="Byrne")
    m.sales("IE_SVC", 2, 90_00, activity=svc, operator_id="uk_ltd")
    m.seller("US_LT_TIN", country="US", tin="38001010000", tin_issued_by="LT", last_name="Lee")
    m.sales("US_LT_TIN", 1, 500_00, activity=svc)
    m.sales("US_LT_TIN", 1, 500_00, activity=svc, start="2025-06-02 10:00:00", operator_id="uk_ltd")
    return m
