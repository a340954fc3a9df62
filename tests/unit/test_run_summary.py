"""The run summary page (``reports/run_summary.html``): hand-counted chart figures from a small
marketplace run through the pipeline, the page's structure, escaping, and no personal data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from builders import Marketplace, write_config

from reporting.pipeline import run
from reporting.reports.summary import (
    AMOUNT_BINS,
    SALES_BINS,
    SUMMARY_PAGE,
    SummaryData,
    bar_chart,
    render_page,
    summary_data,
)
from reporting.settings import load_settings

RUN_ID = "3d0b5c1a-7e2f-4a6b-9c8d-1e2f3a4b5c6d"
#: Names and TINs of the sellers below: none may show on the page.
PERSONAL = {
    "SELLER-ALPHA": ("Aurelija", "Zaliauskiene", "38001019999"),
    "SELLER-BRAVO": ("Benediktas", "Vaitkevicius", "38102029998"),
    "SELLER-CHARLIE": ("Cecilija", "Urbonaite", "48203039997"),
    "SELLER-DELTA": ("Dovydas", "Tamasauskas", "38304049996"),
    "SELLER-ECHO": ("Erika", "Sauerbrunn", "65929970489"),
    "SELLER-FOXTROT": ("Frank", "Rutherford", "123-45-6789"),
    "SELLER-GOLF": ("Gintare", "Quarantinaite", "48405059995"),
    "SELLER-HOTEL": ("Henrikas", "Pakalniskis", None),
}


def marketplace() -> Marketplace:
    """Sellers of goods only, each at a threshold edge; counted by hand below."""
    m = Marketplace()

    def seller(sid: str, **kw: Any) -> None:
        first, last, tin = PERSONAL[sid]
        m.seller(sid, first_name=first, last_name=last, tin=tin, **kw)

    seller("SELLER-ALPHA")  # 29 sales, EUR 1,500.00: both under the thresholds -> de minimis
    m.sales("SELLER-ALPHA", 28, 50_00)
    m.tx("SELLER-ALPHA", "2025-06-01 10:00:00", 100_00)
    seller("SELLER-BRAVO")  # 30 sales, EUR 300.00: 30 sales -> reported (LT)
    m.sales("SELLER-BRAVO", 30, 10_00)
    seller("SELLER-CHARLIE")  # 1 sale of EUR 2,000.00 exactly: "did not exceed" -> de minimis
    m.tx("SELLER-CHARLIE", "2025-07-01 10:00:00", 2000_00)
    seller("SELLER-DELTA")  # 1 sale of EUR 2,000.01 -> reported (LT)
    m.tx("SELLER-DELTA", "2025-07-01 10:00:00", 2000_01)
    seller("SELLER-ECHO", country="DE")  # 45 sales, EUR 4,500.00 -> reported (DE)
    m.sales("SELLER-ECHO", 45, 100_00)
    seller("SELLER-FOXTROT", country="US")  # resident outside the EU: never tested, not reportable
    m.sales("SELLER-FOXTROT", 5, 100_00)
    seller("SELLER-GOLF")  # a transaction in an unknown currency -> quarantined
    m.sales("SELLER-GOLF", 40, 100_00)
    m.tx("SELLER-GOLF", "2025-05-02 10:00:00", 10_00, currency="XYZ", transaction_id="TXYZ")
    seller("SELLER-HOTEL", country=None)  # no residence country -> quarantined
    m.sales("SELLER-HOTEL", 40, 100_00)
    return m


#: By hand: bin -> outcome -> sellers (absent: 0).
SALES = {
    "0-9": {"reported": 1, "de_minimis": 1},  # DELTA, CHARLIE
    "25-29": {"de_minimis": 1},  # ALPHA
    "30-34": {"reported": 1},  # BRAVO
    "40+": {"reported": 1},  # ECHO
}
AMOUNTS = {
    "up to 1,000": {"reported": 1},  # BRAVO
    "1,000.01-1,500": {"de_minimis": 1},  # ALPHA
    "1,500.01-2,000": {"de_minimis": 1},  # CHARLIE, EUR 2,000.00
    "2,000.01-2,500": {"reported": 1},  # DELTA, EUR 2,000.01
    "over 3,000": {"reported": 1},  # ECHO
}


def full(counts: Mapping[str, Mapping[str, int]], bins: tuple[tuple[str, Any], ...]) -> dict[str, dict[str, int]]:
    return {
        label: {o: counts.get(label, {}).get(o, 0) for o in ("reported", "de_minimis", "other")} for label, _ in bins
    }


@dataclass(frozen=True)
class Run:
    out: Path
    run_dir: Path
    manifest: dict[str, Any]
    html: str


@pytest.fixture(scope="module")
def summary_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    base = tmp_path_factory.mktemp("summary-page")
    url = marketplace().write(f"sqlite:///{base / 'source.db'}")
    result = run(
        # a preview: figures per receiving state (a filing has the filing state alone)
        config_path=write_config(base / "dac7.toml", routing="jurisdiction"),
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=base / "out",
        staging_root=base / "staging",
        run_id=RUN_ID,
        ledger_url=f"sqlite:///{base / 'ledger.sqlite3'}",
    )
    html = (base / "out" / SUMMARY_PAGE).read_text(encoding="utf-8")
    return Run(base / "out", Path(result.run_dir), result.manifest, html)


def test_the_run_decides_as_counted_by_hand(summary_run: Run) -> None:
    assert summary_run.manifest["summary"]["decisions"] == {
        "excluded:de_minimis": 2,
        "not_reportable:non_eu": 1,
        "quarantined:currency.unknown": 1,
        "quarantined:seller.no_residence_country": 1,
        "reported": 3,
    }
    assert SUMMARY_PAGE in summary_run.manifest["reports"]


def test_chart_figures_equal_the_hand_count(summary_run: Run) -> None:
    data = summary_data(load_settings(summary_run.run_dir))
    assert data.per_authority == {"DE": 1, "LT": 2}
    assert data.per_authority == summary_run.manifest["summary"]["sellers_per_authority"]
    assert data.sales_bins == full(SALES, SALES_BINS)
    assert data.amount_bins == full(AMOUNTS, AMOUNT_BINS)
    assert data.quarantine == {"currency.unknown": 1, "seller.no_residence_country": 1}


def bars(doc: Any, chart: str) -> dict[tuple[str, str], int]:
    [svg] = doc.xpath(f"//svg[@id='{chart}']")
    return {(r.get("data-category"), r.get("data-series")): int(r.get("data-value")) for r in svg.iter("rect")}


def test_the_page_holds_the_bars_with_those_numbers(summary_run: Run) -> None:
    doc = lxml.html.fromstring(summary_run.html)
    assert bars(doc, "chart-authorities") == {("DE", "sellers"): 1, ("LT", "sellers"): 2}
    sales = bars(doc, "chart-sales")
    assert sales == {(b, o): n for b, counts in full(SALES, SALES_BINS).items() for o, n in counts.items()}
    amounts = bars(doc, "chart-consideration")
    assert amounts[("1,500.01-2,000", "de_minimis")] == 1  # EUR 2,000.00: not above the threshold
    assert amounts[("2,000.01-2,500", "reported")] == 1  # EUR 2,000.01: above it
    assert amounts == {(b, o): n for b, counts in full(AMOUNTS, AMOUNT_BINS).items() for o, n in counts.items()}
    assert bars(doc, "chart-quarantine") == {
        ("currency.unknown", "sellers"): 1,
        ("seller.no_residence_country", "sellers"): 1,
    }
    # each bar says what it is on hover, and the totals are printed at the end of the bars
    [title] = doc.xpath("//svg[@id='chart-sales']//rect[@data-category='25-29'][@data-series='de_minimis']/title")
    assert title.text_content() == "25-29: 1 excluded: de minimis"
    totals = {t.get("data-total"): t.text_content() for t in doc.xpath("//svg[@id='chart-sales']//text[@data-total]")}
    assert totals == {"0-9": "2", "10-19": "0", "20-24": "0", "25-29": "1", "30-34": "1", "35-39": "0", "40+": "1"}


def test_headline_figures_and_links(summary_run: Run) -> None:
    doc = lxml.html.fromstring(summary_run.html)
    figures = {
        tr.get("data-figure"): tr.xpath("td")[0].text_content() for tr in doc.xpath("//table[@id='headline']/tr")
    }
    files = summary_run.manifest["files"]
    assert figures["sellers_read"] == "8"
    assert figures["reportable"] == "3"
    assert figures["excluded:de_minimis"] == "2"
    assert figures["not_reportable:non_eu"] == "1"
    assert figures["quarantined"] == "2"
    assert figures["files"] == str(len(files)) == "2"
    assert figures["bytes"] == f"{sum(f['bytes'] for f in files):,}"
    hrefs = [a.get("href") for a in doc.xpath("//ul[@id='links']//a")]
    assert "due_diligence.html" in hrefs and "quarantine.csv" in hrefs
    for href in hrefs:  # relative to reports/, and there
        assert (summary_run.out / "reports" / href).is_file(), href


def test_the_page_is_self_contained_and_names_no_seller(summary_run: Run) -> None:
    html = summary_run.html
    doc = lxml.html.fromstring(html)
    assert not doc.xpath("//script") and not doc.xpath("//link") and not doc.xpath("//img")
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    for sid, (first, last, tin) in PERSONAL.items():
        for value in (sid, first, last, tin):
            assert not value or value not in html, f"{value!r} is on the page"


def test_the_page_is_deterministic(summary_run: Run) -> None:
    """The same run's page is the same bytes (no clock): a rerun replaces it with itself."""
    from reporting.reports.summary import write_run_summary

    settings = load_settings(summary_run.run_dir)
    again = write_run_summary(settings, summary_run.out, summary_run.manifest).read_text(encoding="utf-8")
    assert again == summary_run.html


def test_values_are_escaped() -> None:
    manifest = {"reporting_year": 2025, "run_id": "<script>x</script>", "summary": {"decisions": {}}, "files": []}
    data = SummaryData({}, {}, {}, {"<b>rule</b>": 3})
    html = render_page(manifest, data, links=[('x.html"><script>', "<i>")])
    assert "<script>" not in html and "<b>rule</b>" not in html and "<i>" not in html
    assert "&lt;b&gt;rule&lt;/b&gt;" in html


def test_bar_lengths_are_proportional() -> None:
    svg = bar_chart("c", "t", ["a", "b"], [("n", "sellers", "#000")], {"a": {"n": 2}, "b": {"n": 1}})
    doc = lxml.html.fromstring(f"<div>{svg}</div>")
    widths = {r.get("data-category"): float(r.get("width")) for r in doc.iter("rect")}
    assert widths["a"] == pytest.approx(2 * widths["b"])
