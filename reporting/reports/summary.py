"""The run summary for people: ``<out>/reports/run_summary.html``, written when a run finalizes.

One self-contained page (inline CSS and SVG, no script, nothing fetched) with the headline figures
of the manifest and four charts computed from the run's staged decisions:

- reportable sellers per receiving authority;
- the sellers whose sales of goods were tested against the de minimis thresholds (fewer than 30
  sales AND at most EUR 2,000), by number of sales and by consideration in EUR, each bar split into
  reported, excluded as de minimis, and other (quarantined after the decision ...);
- quarantined sellers per reason (the first rule that set each one aside).

The figures are aggregated in DuckDB over ``rules/decisions.parquet`` (a few dozen groups, whatever
the number of sellers) and compared exactly: the consideration bins use the exact EUR value the
rules decided on (``goods_eur_exact``, a fraction), so EUR 2,000.00 falls in the last bin up to
2,000 and EUR 2,000.01 in the first above it. The page holds counts, codes and country codes only:
no seller id, name or identifier. Every value is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reporting.reports.html import Cell, Row, escape, page, table, write_page
from reporting.results import Manifest
from reporting.settings import RunSettings
from reporting.staging import connect
from reporting.vocabulary import QUARANTINED, REPORTED

SUMMARY_PAGE = "reports/run_summary.html"

#: Number-of-sales bins: (label, lowest count in the bin); the de minimis line is between 29 and 30.
SALES_BINS: tuple[tuple[str, int], ...] = (
    ("0-9", 0),
    ("10-19", 10),
    ("20-24", 20),
    ("25-29", 25),
    ("30-34", 30),
    ("35-39", 35),
    ("40+", 40),
)
#: Consideration bins in EUR: (label, highest value in the bin, None for the last); the de minimis
#: line is at 2,000 (at most EUR 2,000 stays under it).
AMOUNT_BINS: tuple[tuple[str, int | None], ...] = (
    ("up to 1,000", 1000),
    ("1,000.01-1,500", 1500),
    ("1,500.01-2,000", 2000),
    ("2,000.01-2,500", 2500),
    ("2,500.01-3,000", 3000),
    ("over 3,000", None),
)
#: How a seller tested against the thresholds ended: the series of the de minimis charts.
OUTCOMES: tuple[tuple[str, str, str], ...] = (
    ("reported", "reported", "#2b6cb0"),
    ("de_minimis", "excluded: de minimis", "#dd6b20"),
    ("other", "other (e.g. quarantined)", "#a0aec0"),
)

AUTHORITIES_SQL = """
select authority, count(*)::bigint as sellers
from (select unnest(authorities) as authority from decisions where decision = 'reported')
group by authority
order by authority
"""

QUARANTINE_SQL = """
select substr(decision, length('quarantined:') + 1) as rule, count(*)::bigint as sellers
from decisions
where decision like 'quarantined:%'
group by rule
order by sellers desc, rule
"""

# The sellers whose goods were tested against the de minimis thresholds (goods_eur is set), each
# with the number of the bins its sales and its exact EUR consideration fall in. ``num // den``
# and ``num % den`` compare the fraction with each edge without rounding or overflow; a fraction
# too large for a HUGEINT falls back to the 4-decimal text.
THRESHOLDS_SQL = """
with goods as (
    select
        case decision
            when 'reported' then 'reported'
            when 'excluded:de_minimis' then 'de_minimis'
            else 'other'
        end as outcome,
        coalesce(goods_activities, 0) as sales,
        try_cast(split_part(goods_eur_exact, '/', 1) as hugeint) as num,
        coalesce(try_cast(nullif(split_part(goods_eur_exact, '/', 2), '') as hugeint), 1) as den,
        try_cast(goods_eur as decimal(38, 4)) as approx
    from decisions
    where goods_eur is not null
),

binned as (
    select
        outcome,
        (select count(*) from unnest($sales_edges::bigint[]) as s (edge) where sales >= edge) - 1 as sales_bin,
        (
            select count(*)
            from unnest($amount_edges::bigint[]) as a (edge)
            where
                case
                    when num is null then approx > edge
                    else num // den > edge or (num // den = edge and num % den > 0)
                end
        ) as amount_bin
    from goods
)

select outcome, sales_bin, amount_bin, count(*)::bigint as sellers
from binned
group by all
order by all
"""


@dataclass(frozen=True, slots=True)
class SummaryData:
    """The charts' figures: sellers per authority, per bin and outcome, per quarantine rule."""

    per_authority: dict[str, int]
    sales_bins: dict[str, dict[str, int]]  # bin label -> outcome -> sellers
    amount_bins: dict[str, dict[str, int]]
    quarantine: dict[str, int]


def summary_data(settings: RunSettings) -> SummaryData:
    """Aggregate the run's staged decisions (``rules/decisions.parquet``) in DuckDB."""
    sales = {label: dict.fromkeys((o for o, _, _ in OUTCOMES), 0) for label, _ in SALES_BINS}
    amounts = {label: dict.fromkeys((o for o, _, _ in OUTCOMES), 0) for label, _ in AMOUNT_BINS}
    con = connect(settings.run_path, "rules")
    try:
        per_authority = {a: int(n) for a, n in con.execute(AUTHORITIES_SQL).fetchall()}
        quarantine = {r: int(n) for r, n in con.execute(QUARANTINE_SQL).fetchall()}
        rows = con.execute(
            THRESHOLDS_SQL,
            {
                "sales_edges": [low for _, low in SALES_BINS],
                "amount_edges": [high for _, high in AMOUNT_BINS if high is not None],
            },
        ).fetchall()
    finally:
        con.close()
    for outcome, sales_bin, amount_bin, n in rows:
        sales[SALES_BINS[sales_bin][0]][outcome] += int(n)
        amounts[AMOUNT_BINS[amount_bin][0]][outcome] += int(n)
    return SummaryData(per_authority, sales, amounts, quarantine)


def write_run_summary(settings: RunSettings, out_dir: Path, manifest: Manifest) -> Path:
    """Write ``<out>/reports/run_summary.html`` (atomically, owner-only) for the run whose
    manifest is about to be written; returns its path."""
    target = out_dir / SUMMARY_PAGE
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_page(target, render_page(manifest, summary_data(settings), links=_links(out_dir, manifest)))


def _links(out_dir: Path, manifest: Manifest) -> list[tuple[str, str]]:
    """(href relative to reports/, text) of the other reports of the run that exist."""
    reports = set(manifest.get("reports", []))
    links = []
    for path, text in (
        ("reports/due_diligence.html", "Due-diligence report (sellers that need action)"),
        ("reports/quarantine.csv", "Quarantined sellers and what to correct (CSV)"),
    ):
        if path in reports and (out_dir / path).is_file():
            links.append((path.removeprefix("reports/"), text))
    stages = (manifest.get("data_checks") or {}).get("stages", {})
    for stage, summary in sorted(stages.items()):
        docs = summary.get("data_docs")
        if docs and (out_dir / docs).is_file():
            links.append((str(docs).removeprefix("reports/"), f"Data Docs: {stage} checks"))
    return links


# ------------------------------------------------------------------------------------ the page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem 2rem;color:#1a202c;
line-height:1.4;max-width:60rem}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #cbd5e0;
padding-bottom:.2rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.92em}
th,td{border:1px solid #cbd5e0;padding:3px 8px;text-align:left}th{background:#edf2f7;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#4a5568}
svg{display:block;margin:.4rem 0;max-width:100%;height:auto}svg text{font-size:12px;fill:#1a202c}
svg line.axis{stroke:#718096}svg line.threshold{stroke:#c53030;stroke-dasharray:4 3}svg text.threshold{fill:#c53030}
.legend span{display:inline-block;margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;
margin-right:.3rem;vertical-align:middle}
details{margin-bottom:1rem}
"""


def render_page(manifest: Manifest, data: SummaryData, links: Sequence[tuple[str, str]] = ()) -> str:
    """The page's HTML: headline figures, the charts, the links to the other reports."""
    year = str(manifest.get("reporting_year", ""))
    body = [
        f"<h1>DAC7 {escape(year)}: run summary</h1>",
        f'<p class="muted">Run <code>{escape(str(manifest.get("run_id", "")))}</code>, as of '
        f"{escape(str(manifest.get('as_of', '')))}, environment {escape(str(manifest.get('environment', '')))}, "
        f"routing {escape(str(manifest.get('routing', '')))}. Counts and codes only: no seller is named here.</p>",
    ]
    if manifest.get("operator_id"):  # one operator of a group: its own filing, its own folder
        body.append(
            f'<p id="operator">Operator <code>{escape(str(manifest["operator_id"]))}</code>: '
            f"{escape(str(manifest.get('operator_name', '')))} (one operator of a group: its sellers, thresholds "
            "and filing are its own).</p>"
        )
    if links:
        body.append(
            '<ul id="links">'
            + "".join(f'<li><a href="{escape(href)}">{escape(text)}</a></li>' for href, text in links)
            + "</ul>"
        )
    body += _headline(manifest)
    body += _authorities_section(manifest, data)
    body += _thresholds_section(data)
    body += _quarantine_section(data)
    return page(f"DAC7 {year}: run summary", CSS, "\n".join(body))


def _headline(manifest: Manifest) -> list[str]:
    s = manifest.get("summary", {})
    decisions: Mapping[str, int] = s.get("decisions", {})
    files = manifest.get("files", [])
    quarantined = sum(n for code, n in decisions.items() if code.startswith(QUARANTINED))
    rows: list[tuple[str, str, object]] = [
        ("sellers_read", "Sellers read", s.get("sellers_read")),
        ("transactions_read", "Transactions read", s.get("transactions_read")),
        ("reportable", "Reportable sellers", s.get("reportable")),
    ]
    rows += [
        (code, f"Not reported: {code}", n)
        for code, n in sorted(decisions.items())
        if code != REPORTED and not code.startswith(QUARANTINED)
    ]
    rows += [
        ("quarantined", "Quarantined (not reported until corrected)", quarantined),
        ("files", "XML files published", len(files)),
        ("bytes", "Bytes published", sum(int(f.get("bytes", 0)) for f in files)),
    ]
    diligence = manifest.get("due_diligence") or {}
    if diligence:
        rows.append(("due_diligence", "Reported sellers that need action", diligence.get("sellers", 0)))
    body = "".join(
        f'<tr data-figure="{escape(key)}"><th>{escape(label)}</th><td class="n">{_num(value)}</td></tr>'
        for key, label, value in rows
    )
    return ["<h2>Headline figures</h2>", f'<table id="headline">{body}</table>']


def _authorities_section(manifest: Manifest, data: SummaryData) -> list[str]:
    files: dict[str, list[int]] = {}
    for f in manifest.get("files", []):
        files.setdefault(str(f.get("authority")), []).append(int(f.get("bytes", 0)))
    authorities = sorted(set(data.per_authority) | set(files))
    out = ["<h2>Reportable sellers per authority</h2>"]
    if not authorities:
        return [*out, "<p>No seller is reported to any authority in this run.</p>"]
    out.append(
        bar_chart(
            "chart-authorities",
            "Reportable sellers per receiving authority",
            authorities,
            [("sellers", "reportable sellers", "#2b6cb0")],
            {a: {"sellers": data.per_authority.get(a, 0)} for a in authorities},
        )
    )
    rows = (
        Row(
            (a, _figure(data.per_authority.get(a, 0)), _figure(len(files.get(a, []))), _figure(sum(files.get(a, [])))),
            f' data-authority="{escape(a)}"',
        )
        for a in authorities
    )
    figures = table(("Authority", "Reportable sellers", "Files", "Bytes"), rows, attrs=' id="table-authorities"')
    out.append(f"<details><summary>The figures per authority</summary>{figures}</details>")
    return out


def _thresholds_section(data: SummaryData) -> list[str]:
    tested = sum(sum(v.values()) for v in data.sales_bins.values())
    out = [
        "<h2>Sellers around the de minimis thresholds</h2>",
        '<p class="muted">A seller who only sold goods is not reported with fewer than 30 sales <b>and</b> '
        "a consideration of at most EUR 2,000 in the year (after refunds, converted at the rates the rules "
        f"used). {_num(tested)} seller(s) were tested against these thresholds.</p>",
    ]
    if not tested:
        return [*out, "<p>No seller was tested against the de minimis thresholds in this run.</p>"]
    series = list(OUTCOMES)
    out.append(_legend(series))
    out.append(
        bar_chart(
            "chart-sales",
            "Sellers by number of sales of goods",
            [label for label, _ in SALES_BINS],
            series,
            data.sales_bins,
            threshold=(3, "30 sales"),
        )
    )
    out.append(
        bar_chart(
            "chart-consideration",
            "Sellers by consideration for goods (EUR)",
            [label for label, _ in AMOUNT_BINS],
            series,
            data.amount_bins,
            threshold=(2, "EUR 2,000"),
        )
    )
    for table_id, title, bins in (
        ("table-sales", "Number of sales", data.sales_bins),
        ("table-consideration", "Consideration (EUR)", data.amount_bins),
    ):
        headers = (title, *(text for _, text, _ in series))
        rows = (
            Row((label, *(_figure(counts[key]) for key, _, _ in series)), f' data-bin="{escape(label)}"')
            for label, counts in bins.items()
        )
        figures = table(headers, rows, attrs=f' id="{table_id}"')
        out.append(f"<details><summary>{escape(title)}: the figures</summary>{figures}</details>")
    return out


def _quarantine_section(data: SummaryData) -> list[str]:
    out = ["<h2>Quarantine reasons</h2>"]
    if not data.quarantine:
        return [*out, "<p>No seller was quarantined in this run.</p>"]
    rules = list(data.quarantine)
    out.append(
        '<p class="muted">Quarantined sellers are not reported until their data is corrected; each is '
        "counted once, under the first rule (by name) that set it aside.</p>"
    )
    out.append(
        bar_chart(
            "chart-quarantine",
            "Quarantined sellers per reason",
            rules,
            [("sellers", "quarantined sellers", "#c53030")],
            {r: {"sellers": n} for r, n in data.quarantine.items()},
            label_width=330,
        )
    )
    return out


# ----------------------------------------------------------------------------------- the charts

BAR_WIDTH = 380
ROW = 22


def bar_chart(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, str, str]],
    counts: Mapping[str, Mapping[str, int]],
    *,
    threshold: tuple[int, str] | None = None,
    label_width: int = 130,
) -> str:
    """A horizontal bar chart as inline SVG: one row per category, its bar stacked by series
    (key, text, colour), the total at its end. Each segment is a ``<rect>`` with
    ``data-category``, ``data-series`` and ``data-value`` and a ``<title>`` (the tooltip);
    ``threshold`` draws a dashed line after the row of that index, with its label."""
    top = 24
    totals = [sum(counts.get(c, {}).get(k, 0) for k, _, _ in series) for c in categories]
    scale = BAR_WIDTH / max(max(totals, default=0), 1)
    width = label_width + BAR_WIDTH + 70
    height = top + ROW * len(categories) + 8
    parts = [
        f'<svg id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="14" font-weight="600">{escape(title)}</text>',
    ]
    for i, category in enumerate(categories):
        y = top + i * ROW
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{escape(category)}</text>')
        x = float(label_width)
        for key, text, colour in series:
            value = counts.get(category, {}).get(key, 0)
            w = value * scale
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{ROW - 6}" fill="{colour}" '
                f'data-category="{escape(category)}" data-series="{escape(key)}" data-value="{value}">'
                f"<title>{escape(category)}: {value} {escape(text)}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 5:.1f}" y="{y + 15}" data-total="{escape(category)}">{_num(totals[i])}</text>')
    parts.append(f'<line class="axis" x1="{label_width}" y1="{top}" x2="{label_width}" y2="{height - 8}"/>')
    if threshold is not None:
        after, label = threshold
        y = top + (after + 1) * ROW
        parts.append(
            f'<line class="threshold" x1="{label_width - 4}" y1="{y}" x2="{label_width + BAR_WIDTH}" y2="{y}"/>'
            f'<text class="threshold" x="{label_width + BAR_WIDTH}" y="{y - 3}" text-anchor="end">'
            f"de minimis: {escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: Sequence[tuple[str, str, str]]) -> str:
    items = "".join(f'<span><i style="background:{colour}"></i>{escape(text)}</span>' for _, text, colour in series)
    return f'<p class="legend">{items}</p>'


def _num(value: object) -> str:
    """A figure's text, escaped, for the markup written by hand (the headline table, the charts)."""
    return escape(_figure(value).text)


def _figure(value: object) -> Cell:
    """A figure as a right-aligned cell: an int with thousands separators, None as nothing."""
    return Cell(f"{value:,}" if isinstance(value, int) else str(value if value is not None else ""), ' class="n"')
