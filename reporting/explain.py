"""``dac7 explain``: one seller's decision in plain words, with every number behind it.

Reads the reports that a run published (``<out>/reports/``). Personal data (names, TINs, birth
date, accounts) is masked unless asked for; it is then read from the run's staging extract.

The same reading as data, for the DAC7 view's seller page: :func:`read_seller` (the decision,
the figures and the identity of one seller), :func:`find_sellers` (the seller ids that start
with a prefix, bounded) and :func:`seller_filings` (the ledger's records of the seller). Each
reads one seller with a filter (DuckDB over the Parquet files, SQL over the ledger), never every
seller of a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from reporting.countries import minor_unit_exponent
from reporting.errors import ConfigError
from reporting.reports.due_diligence import mask
from reporting.results import Manifest
from reporting.settings import read_json
from reporting.staging import sql_literal
from reporting.vocabulary import REPORTED

if TYPE_CHECKING:
    from reporting.ledger import Ledger

#: The longest seller id the ledger keeps (``ledger_records.seller_key``).
MAX_SELLER_ID = 200


def mask_name(value: str | None) -> str:
    if not value:
        return "-"
    return " ".join(part[:1] + "*" * (len(part) - 1) for part in value.split())


def units(minor: int, currency: str) -> str:
    exp = minor_unit_exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole:,}.{frac:0{exp}d}" if exp else f"{sign}{whole:,}"


def seller_id_problem(seller_id: str) -> str | None:
    """Why ``seller_id`` cannot be a seller id (a sentence for a person), or ``None`` if it can:
    1 to 200 characters, no control character, no space at either end."""
    if not seller_id:
        return "A seller id is needed: type the seller_id of the source (e.g. S000123)."
    if len(seller_id) > MAX_SELLER_ID:
        return f"A seller id has at most {MAX_SELLER_ID} characters; this one has {len(seller_id)}."
    if any(ord(c) < 32 or ord(c) == 127 for c in seller_id):
        return "A seller id has no control characters (tabs, line breaks): type it on one line."
    if seller_id != seller_id.strip():
        return "A seller id does not start or end with a space: remove the spaces around it."
    return None


# ---------------------------------------------------------------------------------- the reading


@dataclass(frozen=True, slots=True)
class Identity:
    """What the source says about who the seller is: personal data, from the run's staging."""

    name: str  # the legal name, else the first and last name; "" when the source has none
    birth_date: str  # YYYY-MM-DD, "" when none
    tins: tuple[tuple[str, str], ...]  # (TIN, issuing country)
    vat: str
    accounts: tuple[str, ...]  # the financial account identifiers (IBAN ...)
    address: str  # street and building, post code and city, country
    address_country: str
    masked: bool = False

    def mask(self) -> Identity:
        """The same identity with only what identifies nobody: initials, the last characters of
        identifiers, the countries."""
        return replace(
            self,
            name=mask_name(self.name),
            birth_date="****-**-**" if self.birth_date else "",
            tins=tuple((mask(tin) or "-", country) for tin, country in self.tins),
            vat=mask(self.vat),
            accounts=tuple(mask(a) for a in self.accounts),
            address=f"masked ({self.address_country})" if self.address else "",
            masked=True,
        )


@dataclass(frozen=True, slots=True)
class QuarterFigures:
    """The figures of one activity (and property listing) as reported, per quarter: whole units
    of ``currency``, as in the XML's Consideration, NumberOfActivities, Fees and Taxes."""

    activity: str
    listing_id: str | None
    currency: str
    consideration: tuple[int, int, int, int]
    activities: tuple[int, int, int, int]
    fees: tuple[int, int, int, int]
    taxes: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class SellerReading:
    """One seller in a run: the row of ``reports/decisions``, the rows of ``reports/figures``
    (both without personal data) and the identity from the staging (``None`` when the staging
    is no longer there)."""

    seller_id: str
    year: int
    as_of: str
    environment: str
    run_id: str
    decision: Mapping[str, Any]
    figures: tuple[Mapping[str, Any], ...]
    identity: Identity | None

    @property
    def reported(self) -> list[QuarterFigures]:
        return reported_figures(self.figures)


@dataclass(frozen=True, slots=True)
class SellerMatch:
    seller_id: str
    seller_type: str
    decision: str
    authorities: str


@dataclass(frozen=True, slots=True)
class SellerFiling:
    """A record of the ledger that carries the seller, with its message."""

    message_ref_id: str
    environment: str
    authority: str
    reporting_year: int
    message_type_indic: str
    message_status: str
    file_name: str
    created: datetime
    published: datetime | None
    doc_type: str  # new, correction, deletion
    doc_type_indic: str  # OECD1, OECD2, OECD3 (test: OECD11 ...)
    doc_ref_id: str
    corr_doc_ref_id: str | None
    record_status: str  # sent, accepted, rejected, superseded, deleted
    superseded_by: str | None
    error_codes: tuple[str, ...]  # the authority's record error codes for this DocRefId


def _manifest(out: Path, year: int) -> Manifest:
    """The manifest of the run in ``out``: the year's output (its latest run) or a run's kept
    copy (``<year>/runs/<run>``, whose ``reports/`` holds the seller reports of that run)."""
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError(f"no manifest.json in {out}: run `dac7 run` for {year} first")
    manifest: Manifest = read_json(manifest_path)
    if manifest["reporting_year"] != year:
        raise ConfigError(f"{out} holds the run of {manifest['reporting_year']}, not {year}")
    return manifest


def _rows(con: duckdb.DuckDBPyConnection, path: Path, seller_id: str, order: str = "") -> list[dict[str, Any]]:
    rel = con.execute(
        f"select * from read_parquet({sql_literal(path)}) where seller_id = ? {order}",  # our own file
        [seller_id],
    )
    names = [d[0] for d in rel.description]
    return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]


def read_seller(out_dir: str | Path, seller_id: str, year: int, run: str | None = None) -> SellerReading | None:
    """The seller's decision, figures and identity in the run published into ``out_dir``, or in
    the run kept at ``out_dir/run`` (``runs/<run>``: its manifest and ``reports/``); ``None``
    when the run has no such seller. Raises ConfigError when there is no run of ``year``."""
    out = Path(out_dir) / run if run else Path(out_dir)
    manifest = _manifest(out, year)
    con = duckdb.connect()
    try:
        decisions = _rows(con, out / "reports" / "decisions.parquet", seller_id)
        if not decisions:
            return None
        figures = _rows(
            con, out / "reports" / "figures.parquet", seller_id, "order by activity, listing_id, quarter, currency"
        )
        identity = _read_identity(con, manifest, seller_id)
    finally:
        con.close()
    return SellerReading(
        seller_id=seller_id,
        year=year,
        as_of=str(manifest["as_of"]),
        environment=str(manifest["environment"]),
        run_id=str(manifest["run_id"]),
        decision=decisions[0],
        figures=tuple(figures),
        identity=identity,
    )


def find_sellers(
    out_dir: str | Path, prefix: str, year: int, limit: int = 50, run: str | None = None
) -> tuple[list[SellerMatch], bool]:
    """The sellers of the run (the latest, or the one kept at ``out_dir/run``) whose id starts
    with ``prefix``, in id order, at most ``limit``; and whether there are more. DuckDB keeps the
    ``limit + 1`` first only, whatever the run's size."""
    out = Path(out_dir) / run if run else Path(out_dir)
    _manifest(out, year)
    path = out / "reports" / "decisions.parquet"
    con = duckdb.connect()
    try:
        rows = con.execute(
            "select seller_id, seller_type, decision, authorities "
            f"from read_parquet({sql_literal(path)}) where starts_with(seller_id, ?) "  # our own file
            "order by seller_id limit ?",
            [prefix, limit + 1],
        ).fetchall()
    finally:
        con.close()
    matches = [SellerMatch(str(s), str(t or ""), str(d or ""), str(a or "")) for s, t, d, a in rows]
    return matches[:limit], len(matches) > limit


def reported_figures(figures: Iterable[Mapping[str, Any]]) -> list[QuarterFigures]:
    """The figures as reported, per activity and listing, from the rows of ``reports/figures``
    (the reported figure of a quarter is on its first row; a quarter without a row is 0)."""
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    for f in figures:
        if f.get("reported_currency") is None:
            continue
        g = groups.setdefault(
            (f["activity"], f.get("listing_id")),
            {"currency": f["reported_currency"], **{k: [0, 0, 0, 0] for k in ("cons", "n", "fees", "tax")}},
        )
        q = int(f["quarter"]) - 1
        g["cons"][q] = int(f["reported_consideration"] or 0)
        g["n"][q] = int(f["reported_activities"] or 0)
        g["fees"][q] = int(f["reported_fees"] or 0)
        g["tax"][q] = int(f["reported_taxes"] or 0)
    return [
        QuarterFigures(
            activity=activity,
            listing_id=listing,
            currency=str(g["currency"]),
            consideration=_four(g["cons"]),
            activities=_four(g["n"]),
            fees=_four(g["fees"]),
            taxes=_four(g["tax"]),
        )
        for (activity, listing), g in groups.items()
    ]


def _four(values: list[int]) -> tuple[int, int, int, int]:
    a, b, c, d = values
    return (a, b, c, d)


def seller_filings(ledger: Ledger, seller_id: str, year: int | None = None) -> list[SellerFiling]:
    """Every record of the ledger that carries the seller (of ``year``, or of every year), oldest
    message first, with the authority's record error codes for it."""
    import sqlalchemy as sa

    from reporting.ledger import schema as t
    from reporting.ledger.model import SELLER

    m, r, e = t.messages, t.records, t.errors
    query = (
        sa.select(
            m.c.message_ref_id,
            m.c.environment,
            m.c.authority,
            m.c.reporting_year,
            m.c.message_type_indic,
            m.c.status.label("message_status"),
            m.c.file_name,
            m.c.created,
            m.c.published,
            r.c.doc_type,
            r.c.doc_type_indic,
            r.c.doc_ref_id,
            r.c.corr_doc_ref_id,
            r.c.status.label("record_status"),
            r.c.superseded_by,
        )
        .join(m, m.c.id == r.c.message_id)
        .where(r.c.kind == SELLER, r.c.seller_key == seller_id)
        .order_by(m.c.created, m.c.id, r.c.position)
    )
    if year is not None:
        query = query.where(m.c.reporting_year == year)
    with ledger.engine.connect() as conn:
        rows = conn.execute(query).all()
        doc_ref_ids = [row.doc_ref_id for row in rows]
        codes: dict[str, set[str]] = {}
        if doc_ref_ids:
            errors = sa.select(e.c.doc_ref_id, e.c.code).where(e.c.scope == "record", e.c.doc_ref_id.in_(doc_ref_ids))
            for doc_ref_id, code in conn.execute(errors):
                codes.setdefault(doc_ref_id, set()).add(code)
    return [
        SellerFiling(
            message_ref_id=row.message_ref_id,
            environment=row.environment,
            authority=row.authority,
            reporting_year=row.reporting_year,
            message_type_indic=row.message_type_indic,
            message_status=row.message_status,
            file_name=row.file_name,
            created=row.created,
            published=row.published,
            doc_type=row.doc_type,
            doc_type_indic=row.doc_type_indic,
            doc_ref_id=row.doc_ref_id,
            corr_doc_ref_id=row.corr_doc_ref_id,
            record_status=row.record_status,
            superseded_by=row.superseded_by,
            error_codes=tuple(sorted(codes.get(row.doc_ref_id, ()))),
        )
        for row in rows
    ]


def _read_identity(con: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any], seller_id: str) -> Identity | None:
    staging = manifest.get("staging")
    extract = Path(staging) / "extract" if staging else None
    if extract is None or not (extract / "sellers.parquet").is_file():
        return None
    [s] = _rows(con, extract / "sellers.parquet", seller_id) or [{}]
    tins = _rows(con, extract / "seller_tins.parquet", seller_id, "order by issued_by, tin")
    accounts_file = extract / "seller_financial_accounts.parquet"
    accounts = _rows(con, accounts_file, seller_id, "order by identifier") if accounts_file.is_file() else []
    name = s.get("legal_name") or " ".join(filter(None, (s.get("first_name"), s.get("last_name"))))
    lines = (
        " ".join(filter(None, (s.get("address_street"), s.get("address_building")))),
        " ".join(filter(None, (s.get("address_post_code"), s.get("address_city")))),
        s.get("address_country") or "",
    )
    return Identity(
        name=name or "",
        birth_date=str(s["birth_date"]) if s.get("birth_date") else "",
        tins=tuple((str(t["tin"]) if t["tin"] is not None else "", str(t["issued_by"])) for t in tins),
        vat=str(s.get("vat_id") or ""),
        accounts=tuple(str(a["identifier"]) for a in accounts if a.get("identifier")),
        address=", ".join(x for x in lines if x),
        address_country=str(s.get("address_country") or ""),
    )


# ---------------------------------------------------------------------------------- the command


def explain_seller(out_dir: str | Path, seller_id: str, year: int, *, show_personal_data: bool = False) -> str:
    reading = read_seller(out_dir, seller_id, year)
    if reading is None:
        return (
            f"Seller {seller_id} is not in this run: no transaction paid or credited in {year}, "
            "or not a seller_id of the source."
        )
    d = reading.decision
    lines = [
        f"Seller {seller_id} ({d['seller_type']}), DAC7 {year}, as of {reading.as_of}, "
        f"{reading.environment} run {reading.run_id}",
        f"Decision: {d['decision']}",
        f"  {d['explanation']}",
        f"Reading of the rules: {d.get('reading_label') or 'EU wording'} (the law of the state filed in)",
        f"Residence: {d['residence_countries'] or '-'} ({d['residence_reasons'] or '-'})",
        f"Receiving authorities: {d['authorities'] or 'none'}",
        f"Forwarded by the filing state to: {exchange_text(d)}",
        f"Transactions: {d['transactions']} in the period, {d['refunded_transactions']} refunded by the "
        f"as-of date, {d['fully_refunded_transactions']} of them in full (not counted); "
        f"{d['refunds_after_as_of']} refund(s) dated after the as-of date, not applied",
    ]
    if d["reported_currency"]:
        lines.append(f"Reported in {d['reported_currency']}" + (" (converted to EUR)" if d["converted"] else ""))
    if d["goods_activities"] or d["goods_eur"]:
        lines.append(
            f"Sales of goods: {d['goods_activities']} counted, EUR {d['goods_eur'] or '0'} for the de minimis test"
        )
    if d["rates"] and d["rates"] != "[]":
        lines.append(f"Rates: {d['rates']}")
    lines.append(_identity_line(reading.identity, show_personal_data))
    lines.append("")
    lines.append(
        f"  {'activity':<22}{'listing':<10}{'Q':>2} {'cur':<4}{'tx':>6}{'refunded':>9}{'counted':>8}"
        f"{'consideration':>16}{'fees':>12}{'taxes':>10}  |  reported {'cons':>10}{'n':>6}{'fees':>9}"
        f"{'taxes':>8}"
    )
    for f in reading.figures:
        cur = f["currency"]
        reported = (
            f["row_decision"]
            if f["row_decision"] != REPORTED
            else f"{f['reported_currency'] or '-':<4}{_n(f['reported_consideration']):>11}"
            f"{_n(f['reported_activities']):>6}{_n(f['reported_fees']):>9}{_n(f['reported_taxes']):>8}"
        )
        lines.append(
            f"  {f['activity']:<22}{f['listing_id'] or '':<10}{f['quarter']:>2} {cur:<4}{f['transactions']:>6}"
            f"{f['refunded_transactions']:>9}{f['counted_activities']:>8}"
            f"{units(f['consideration_minor'], cur):>16}{units(f['fee_minor'], cur):>12}"
            f"{units(f['tax_minor'], cur):>10}  |  {reported}"
        )
    lines.append("")
    lines.append(
        "Amounts in the original currency, after the refunds up to the as-of date; reported figures are "
        "whole units, rounded half up once per figure, per activity and quarter."
    )
    return "\n".join(lines)


def exchange_text(d: Mapping[str, Any]) -> str:
    """The states the filing state forwards the seller to, and why (residence or property)."""
    states = [c for c in (d.get("exchange_states") or "").split(";") if c]
    reasons = [r for r in (d.get("exchange_reasons") or "").split("; ") if r]
    if not states:
        return "none"
    return ", ".join(f"{c} ({r})" for c, r in zip(states, reasons, strict=False))


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _identity_line(identity: Identity | None, show: bool) -> str:
    if identity is None:
        return "Identity: the run's staging data is no longer available"
    if show:
        tin_text = ", ".join(f"{tin or '-'} ({country})" for tin, country in identity.tins) or "unknown"
        return f"Identity: {identity.name}; born {identity.birth_date or '-'}; TIN {tin_text}"
    masked = identity.mask()
    tin_text = ", ".join(f"{tin} ({country})" for tin, country in masked.tins) or "unknown"
    return f"Identity (masked; --show-personal-data to show): {masked.name}; TIN {tin_text}"
