"""Due diligence of the identifiers of reported sellers, and the report for compliance staff.

TINs are checked against their issuing country's formats and check digits with python-stdnum,
where it knows that country's personal or company tax numbers; a TIN of a country it does not
know is reported as not checked, never as valid. VAT ids are checked as EU VAT numbers, account
identifiers that look like IBANs as IBANs (the checks are :mod:`reporting.identifiers`', which the
``stdnum`` verification adapter shares). A malformed identifier is a warning for compliance
staff: the value is sent as the source holds it, never rewritten.

The report (``<out>/reports/due_diligence.csv`` and ``.html``) lists every reported seller that
needs action before the deadline, with the action to take: TIN unknown (reported with
``unknown="true"``: DAC7 expects the operator to obtain it), TIN malformed or not checkable, VAT
malformed, IBAN malformed. Identifiers are masked to their last three characters.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reporting.identifiers import check_account, check_tin, check_vat, mask
from reporting.private import private_dirs
from reporting.reports import csvcells
from reporting.reports.html import Cell, Row, escape, page, table, write_page
from reporting.results import DueDiligence
from reporting.settings import RunSettings
from reporting.staging import connect, sql_literal

ACTIONS = {
    ("tin", "unknown"): 'Obtain the seller\'s TIN: it was reported as unknown (TIN unknown="true")',
    ("tin", "malformed"): "Verify the TIN with the seller: it fails its country's format or check digits",
    ("tin", "unchecked"): "Verify the TIN by hand: no automatic check exists for its country",
    ("vat", "malformed"): "Verify the VAT number with the seller",
    ("iban", "malformed"): "Verify the bank account (IBAN) with the seller",
}

SELLERS_SQL = """
select
    d.seller_id, d.seller_type, array_to_string(d.authorities, ';') as authorities, s.vat_id,
    (select list(struct_pack(tin := t.tin, issued_by := t.issued_by)) from seller_tins t
     where t.seller_id = d.seller_id) as tins,
    (select list(a.identifier) from seller_financial_accounts a where a.seller_id = d.seller_id) as accounts
from decisions d
inner join sellers s on s.seller_id = d.seller_id
where d.decision = 'reported'
order by d.seller_id
"""

COLUMNS = (
    "seller_id", "seller_type", "authorities", "identifier", "country", "value_masked", "finding", "action", "kind"
)  # fmt: skip

#: The kinds of finding, in the order the report counts them.
KINDS = (
    "quarantined",
    "threshold crossed without complete data",
    "TIN unknown",
    "TIN malformed",
    "TIN not checkable",
    "VAT malformed",
    "IBAN malformed",
    "data check warning",
)
_KIND_OF = {
    ("tin", "unknown"): "TIN unknown",
    ("tin", "malformed"): "TIN malformed",
    ("tin", "unchecked"): "TIN not checkable",
    ("vat", "malformed"): "VAT malformed",
    ("iban", "malformed"): "IBAN malformed",
}


def findings_of(row: dict[str, Any]) -> Iterator[dict[str, str]]:
    base = {"seller_id": row["seller_id"], "seller_type": row["seller_type"], "authorities": row["authorities"]}
    tins = row["tins"] or []
    if not tins:
        yield {
            **base,
            "identifier": "tin",
            "country": "",
            "value_masked": "",
            "finding": "TIN unknown",
            "action": ACTIONS[("tin", "unknown")],
            "kind": _KIND_OF[("tin", "unknown")],
        }
    for t in tins:
        c = check_tin(t["tin"], t["issued_by"], row["seller_type"])
        if c.status != "valid":
            yield {
                **base,
                "identifier": "tin",
                "country": t["issued_by"],
                "value_masked": mask(t["tin"]),
                "finding": c.detail,
                "action": ACTIONS[("tin", c.status)],
                "kind": _KIND_OF[("tin", c.status)],
            }
    if row["vat_id"]:
        c = check_vat(row["vat_id"])
        if c.status != "valid":
            yield {
                **base,
                "identifier": "vat",
                "country": row["vat_id"][:2],
                "value_masked": mask(row["vat_id"]),
                "finding": c.detail,
                "action": ACTIONS[("vat", c.status)],
                "kind": _KIND_OF[("vat", c.status)],
            }
    for identifier in row["accounts"] or []:
        account = check_account(identifier)
        if account is not None and account.status != "valid":
            yield {
                **base,
                "identifier": "iban",
                "country": account.country or "",
                "value_masked": mask(identifier),
                "finding": account.detail,
                "action": ACTIONS[("iban", account.status)],
                "kind": _KIND_OF[("iban", account.status)],
            }


QUARANTINE_ACTION = (
    "Correct the rows listed in reports/quarantine.csv, then rerun: the seller is not reported meanwhile"
)
INCOMPLETE_ACTION = (
    "Complete the seller's data before the deadline (reports/quarantine.csv lists what is missing): "
    "it crossed the reporting thresholds and must be reported"
)

# Quarantined sellers with their reasons (rules and tables, no values), and whether the rules
# had found them reportable (thresholds crossed) before their data was found incomplete.
QUARANTINED_SQL = """
with reasons as (
    select seller_id, string_agg(distinct rule, '; ' order by rule) as rules, count(*) as findings
    from read_parquet([{files}])
    group by seller_id
)

select
    d.seller_id, d.seller_type, d.decision, r.rules, r.findings,
    array_to_string(i.authorities, ';') as would_report_to
from decisions as d
inner join reasons as r on r.seller_id = d.seller_id
left join read_parquet({incomplete}) as i on i.seller_id = d.seller_id
where d.decision like 'quarantined:%'
order by d.seller_id
"""

# Warnings of the data checks (e.g. an entity without its business registration number) for
# the sellers that are reported.
WARNINGS_SQL = """
select d.seller_id, d.seller_type, array_to_string(d.authorities, ';') as authorities, w.rule, w.message
from read_parquet([{files}]) as w
inner join decisions as d on d.seller_id = w.seller_id
where d.decision = 'reported'
order by d.seller_id, w.rule
"""


def quarantine_rows(con: Any, settings: RunSettings) -> list[dict[str, str]]:
    files = [
        p
        for p in (
            settings.run_path / "extract" / "quarantine_extract.parquet",
            settings.run_path / "rules" / "quarantine_rules.parquet",
        )
        if p.is_file()
    ]
    incomplete = settings.run_path / "rules" / "reportable_incomplete.parquet"
    if not files or not incomplete.is_file():
        return []
    sql = QUARANTINED_SQL.format(files=", ".join(sql_literal(p) for p in files), incomplete=sql_literal(incomplete))
    rel = con.execute(sql)
    names = [d[0] for d in rel.description]
    rows = []
    for values in rel.fetchall():
        r = dict(zip(names, values, strict=True))
        crossed = bool(r["would_report_to"])
        rows.append(
            {
                "seller_id": r["seller_id"],
                "seller_type": r["seller_type"] or "",
                "authorities": r["would_report_to"] or "",
                "identifier": "data",
                "country": "",
                "value_masked": "",
                "finding": (
                    f"threshold crossed without complete data ({r['rules']})"
                    if crossed
                    else f"quarantined ({r['rules']})"
                ),
                "action": INCOMPLETE_ACTION if crossed else QUARANTINE_ACTION,
                "kind": KINDS[1] if crossed else KINDS[0],
            }
        )
    return rows


def warning_rows(con: Any, settings: RunSettings) -> list[dict[str, str]]:
    files = sorted((settings.run_path / "checks").glob("*_warnings.parquet"))
    if not files:
        return []
    rel = con.execute(WARNINGS_SQL.format(files=", ".join(sql_literal(p) for p in files)))
    return [
        {
            "seller_id": seller_id,
            "seller_type": seller_type or "",
            "authorities": authorities,
            "identifier": "data",
            "country": "",
            "value_masked": "",
            "finding": f"data check: {rule}",
            "action": message[:1].upper() + message[1:],
            "kind": "data check warning",
        }
        for seller_id, seller_type, authorities, rule, message in rel.fetchall()
    ]


def write_due_diligence(settings: RunSettings, out_dir: Path) -> DueDiligence:
    """Write ``reports/due_diligence.csv`` and ``.html``; returns the counts per finding kind."""
    con = connect(settings.run_path, "extract", "rules")
    try:
        rel = con.execute(SELLERS_SQL)
        names = [d[0] for d in rel.description]
        rows = [f for r in rel.fetchall() for f in findings_of(dict(zip(names, r, strict=True)))]
        rows += warning_rows(con, settings)
        rows += quarantine_rows(con, settings)
    finally:
        con.close()
    rows.sort(key=lambda r: (r["seller_id"], r["identifier"], r["finding"]))
    counts = Counter(r["kind"] for r in rows)
    reports = private_dirs(out_dir / "reports")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(map(csvcells.row, rows))  # no cell read as a formula
    write_page(reports / "due_diligence.csv", buf.getvalue())
    write_page(reports / "due_diligence.html", _html(settings, rows, counts))
    return {
        "sellers": len({r["seller_id"] for r in rows}),
        "findings": len(rows),
        "by_kind": {k: counts[k] for k in KINDS if counts[k]},
    }


#: The link from the report (``<year>/files/reports/due_diligence.html`` in the DAC7 view) back
#: to the view's list of findings, which sorts, filters and exports them.
VIEW_LINK = "../../due-diligence"
#: The report's columns for people, in reading order: (column of the CSV, header).
HTML_COLUMNS = (
    ("seller_id", "Seller"),
    ("kind", "Kind"),
    ("finding", "What was found"),
    ("action", "What to do"),
    ("identifier", "Identifier"),
    ("country", "Country"),
    ("value_masked", "Value (masked)"),
    ("authorities", "Reported to"),
    ("seller_type", "Seller type"),
)
REPORT_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#1a202c;line-height:1.4;
max-width:100%;overflow-wrap:break-word}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.92em;width:100%;table-layout:auto}
#counts{width:auto}
td,th{border:1px solid #cbd5e0;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#edf2f7}.n{text-align:right}.totals span{font-weight:bold}
td.action{min-width:16rem}
"""


def _html(settings: RunSettings, rows: list[dict[str, str]], counts: Counter[str]) -> str:
    """A page for compliance staff that fits the screen: the counts per kind first (each with a
    stable id for tools), then one row per finding, cells wrapping. Identifiers are masked;
    nothing else personal is shown. The DAC7 view sorts, filters and exports the same list."""
    e = escape
    sellers = len({r["seller_id"] for r in rows})
    quarantined = len({r["seller_id"] for r in rows if r["identifier"] == "data" and r["kind"] in KINDS[:2]})
    summary = table(
        ("Kind of finding", "Count"),
        (Row((k, Cell(str(counts[k]), f' class=n id="count-{_slug(k)}"')), f' data-kind="{e(k)}"') for k in KINDS),
        attrs=' id="counts"',
    )
    findings = table(
        (h for _, h in HTML_COLUMNS),
        ([Cell(r[c], " class=action") if c == "action" else r[c] for c, _ in HTML_COLUMNS] for r in rows),
        attrs=' id="findings"',
    )
    docs = "".join(
        f'<li><a href="data-docs/{stage}/index.html">{stage}</a></li>'
        for stage in ("extract", "identity", "aggregates")
        if (settings.run_path / "data-docs" / stage / "index.html").is_file()
    )
    links = f"<p>Data checks (Great Expectations Data Docs):</p><ul>{docs}</ul>" if docs else ""
    text = f"""<p><a id="back-to-view" href="{VIEW_LINK}">Back to the DAC7 view</a>: it sorts and filters this list and
exports what is shown as CSV.</p>
<h1>DAC7 {settings.year}: sellers that need action</h1>
<p>Run {e(settings.run_id)}, as of {settings.as_of}, environment {e(settings.environment)}. Identifiers are masked.</p>
<p class=totals><span id="sellers-count">{sellers}</span> seller(s) need action,
<span id="findings-count">{len(rows)}</span> finding(s);
<span id="quarantined-count">{quarantined}</span> seller(s) quarantined (not reported until corrected,
see <a href="quarantine.csv">quarantine.csv</a>).</p>
{summary}
{links}
<h2>Findings</h2>{findings}"""
    return page(f"DAC7 {settings.year}: due diligence", REPORT_CSS, text)


def _slug(kind: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")
