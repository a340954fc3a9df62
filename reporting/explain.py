"""``dac7 explain``: one seller's decision in plain words, with every number behind it.

Reads the reports that a run published (``<out>/reports/``). Personal data (names, TINs, birth
date, accounts) is masked unless asked for; it is then read from the run's staging extract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from reporting.countries import minor_unit_exponent
from reporting.due_diligence import mask
from reporting.errors import ConfigError
from reporting.run import read_json
from reporting.staging import sql_literal


def mask_name(value: str | None) -> str:
    if not value:
        return "-"
    return " ".join(part[:1] + "*" * (len(part) - 1) for part in value.split())


def units(minor: int, currency: str) -> str:
    exp = minor_unit_exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole:,}.{frac:0{exp}d}" if exp else f"{sign}{whole:,}"


def _rows(con: duckdb.DuckDBPyConnection, path: Path, seller_id: str, order: str = "") -> list[dict[str, Any]]:
    rel = con.execute(
        f"select * from read_parquet({sql_literal(path)}) where seller_id = ? {order}",  # our own file
        [seller_id],
    )
    names = [d[0] for d in rel.description]
    return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]


def explain_seller(out_dir: str | Path, seller_id: str, year: int, *, show_personal_data: bool = False) -> str:
    out = Path(out_dir)
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError(f"no manifest.json in {out}: run `dac7 run` for {year} first")
    manifest = read_json(manifest_path)
    if manifest["reporting_year"] != year:
        raise ConfigError(f"{out} holds the run of {manifest['reporting_year']}, not {year}")
    con = duckdb.connect()
    try:
        decisions = _rows(con, out / "reports" / "decisions.parquet", seller_id)
        if not decisions:
            return (
                f"Seller {seller_id} is not in this run: no transaction paid or credited in {year}, "
                "or not a seller_id of the source."
            )
        d = decisions[0]
        figures = _rows(
            con, out / "reports" / "figures.parquet", seller_id, "order by activity, listing_id, quarter, currency"
        )
        identity = _identity(con, manifest, seller_id, show_personal_data)
    finally:
        con.close()
    lines = [
        f"Seller {seller_id} ({d['seller_type']}), DAC7 {year}, as of {manifest['as_of']}, "
        f"{manifest['environment']} run {manifest['run_id']}",
        f"Decision: {d['decision']}",
        f"  {d['explanation']}",
        f"Reading of the rules: {d.get('reading_label') or 'EU wording'} (the law of the state filed in)",
        f"Residence: {d['residence_countries'] or '-'} ({d['residence_reasons'] or '-'})",
        f"Receiving authorities: {d['authorities'] or 'none'}",
        f"Forwarded by the filing state to: {_exchange(d)}",
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
    lines.extend(identity)
    lines.append("")
    lines.append(
        f"  {'activity':<22}{'listing':<10}{'Q':>2} {'cur':<4}{'tx':>6}{'refunded':>9}{'counted':>8}"
        f"{'consideration':>16}{'fees':>12}{'taxes':>10}  |  reported {'cons':>10}{'n':>6}{'fees':>9}"
        f"{'taxes':>8}"
    )
    for f in figures:
        cur = f["currency"]
        reported = (
            f["row_decision"]
            if f["row_decision"] != "reported"
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


def _exchange(d: dict[str, Any]) -> str:
    """The states the filing state forwards the seller to, and why (residence or property)."""
    states = [c for c in (d.get("exchange_states") or "").split(";") if c]
    reasons = [r for r in (d.get("exchange_reasons") or "").split("; ") if r]
    if not states:
        return "none"
    return ", ".join(f"{c} ({r})" for c, r in zip(states, reasons, strict=False))


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _identity(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any], seller_id: str, show: bool) -> list[str]:
    staging = Path(manifest.get("staging") or "")
    sellers = staging / "extract" / "sellers.parquet"
    if not sellers.is_file():
        return ["Identity: the run's staging data is no longer available"]
    [s] = _rows(con, sellers, seller_id) or [{}]
    tins = _rows(con, staging / "extract" / "seller_tins.parquet", seller_id, "order by issued_by, tin")
    name = s.get("legal_name") or " ".join(filter(None, (s.get("first_name"), s.get("last_name"))))
    if show:
        tin_text = ", ".join(f"{t['tin']} ({t['issued_by']})" for t in tins) or "unknown"
        return [f"Identity: {name}; born {s.get('birth_date') or '-'}; TIN {tin_text}"]
    tin_text = ", ".join(f"{mask(t['tin']) or '-'} ({t['issued_by']})" for t in tins) or "unknown"
    return [f"Identity (masked; --show-personal-data to show): {mask_name(name)}; TIN {tin_text}"]
