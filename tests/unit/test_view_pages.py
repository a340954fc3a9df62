"""The DAC7 view's pages and reading (``plugins/dac7_view.py``), without Airflow: hand-made
manifests and filings, the HTML parsed back and read as a person would read it.

What is checked: a partial rejection is a warning with its count, every error code has its
published meaning or says it has none, records of a message never sent are not called sent, the
figures that differ are explained with the manifest's own numbers, a test run never hides the
latest production run and every kept run's files stay reachable, and the due-diligence list
sorts, filters and exports formula-safe CSV.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from lxml import html

from reporting.error_codes import meaning

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
YEAR = 2025
PROD_RUN = "11111111-2222-4333-8444-555555555555"
TEST_RUN = "66666666-7777-4888-9999-aaaaaaaaaaaa"
PREVIEW_RUN = "00000000-1111-4222-8333-444444444444"


@pytest.fixture
def view(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_view

    return dac7_view


def filing(view: Any, **change: Any) -> Any:
    values: dict[str, Any] = {
        "message_ref_id": "LT2025LTAAAA",
        "environment": "prod",
        "authority": "LT",
        "message_type_indic": "DPI401",
        "sellers": 26,
        "record_kinds": (("ReportableSeller new (OECD1)", 26), ("PlatformOperator new (OECD1)", 1)),
        "record_statuses": (("accepted", 25), ("rejected", 2)),
        "status": "accepted",
        "created": "2026-01-15 06:00",
        "published": "2026-01-15 06:01",
        "rejected_sellers": ("S1", "S2"),
        "error_codes": ("40080",),
        "file": "LT/LT2025LTAAAA.xml",
        "records": 27,
        "rejected_records": 2,
        "error_meanings": (meaning("40080", "LT").text(),),
    }
    return view.Filing(**(values | change))


def row_of(view: Any, f: Any) -> html.HtmlElement:
    page = html.fromstring(view._table(["h"] * 10, [view._filing_row(f)], table_id="t"))
    return page.xpath("//tr[td]")[0]


# ------------------------------------------------------------------------------------ statuses


def test_a_partial_rejection_is_a_warning_with_its_count_and_the_codes_meaning(view: Any) -> None:
    row = row_of(view, filing(view))
    [badge] = row.xpath(".//span[contains(@class, 'status')]")
    assert badge.get("class") == "status status-partial"
    assert badge.text_content() == "partially rejected: 2 of 27 records"
    assert not row.xpath(".//span[contains(@class, 'status-accepted')]")
    text = row.text_content()
    assert "2 of 27 record(s) rejected" in text
    assert (
        "40080: If a TIN is provided (not flagged unknown and has a value), the issuing jurisdiction must be provided."
        in text
    )
    # an accepted message without a rejected record stays green
    clean = row_of(view, filing(view, rejected_records=0, record_statuses=(("accepted", 27),), error_codes=()))
    assert clean.xpath(".//span[@class='status status-accepted']")[0].text_content() == "accepted"


@pytest.mark.parametrize(
    ("code", "authority", "text"),
    [
        ("40080", "LT", "40080: If a TIN is provided (not flagged unknown and has a value), the issuing jurisdiction "
         "must be provided."),
        ("50007", "DE", "50007: File error: the file failed validation against the XML Schema Definition."),
        ("E4080", "IT", "E4080: If a TIN is provided (not flagged unknown and has a value), the issuing jurisdiction "
         "must be provided."),
        ("E0130", "IT", "E0130: MessageRefId must be IT<year>IT<UUID v4>."),
        ("E9020", "IT", "E9020: The nil report contains one or more ReportableSeller elements."),
        ("FR-12", "FR", "FR-12: The individual seller has no TIN and no birthplace; the birthplace is then mandatory."),
        ("33", "FR", "33: The seller has no relevant activity; every seller needs at least one."),
        ("33", "DE", "code 33: no published meaning"),
        ("E0021", "DE", "code E0021: no published meaning"),
        ("99999", None, "code 99999: no published meaning"),
        ("50001", "DE", "50001: File error (CTS transport): the file could not be downloaded."),
        ("50006", "LT", "50006: File error (CTS transport): the file failed the virus scan."),
        ("50010", "DE", "code 50010: no published meaning"),  # the reference gives it no meaning
    ],
)  # fmt: skip
def test_every_error_code_has_its_published_meaning_or_says_it_has_none(
    code: str, authority: str | None, text: str
) -> None:
    assert meaning(code, authority).text() == text


def test_no_eu_code_meaning_is_shadowed_by_the_preflights_table() -> None:
    from reporting.checks.business import RULES
    from reporting.error_codes import CTS_FILE_ERRORS, EU_ONLY_ON_RECEIPT

    assert not set(EU_ONLY_ON_RECEIPT) & set(RULES), "an entry the preflight's table takes precedence over"
    assert not set(CTS_FILE_ERRORS) & (set(RULES) | set(EU_ONLY_ON_RECEIPT))


@pytest.mark.parametrize("status", ["rendered", "discarded"])
def test_the_records_of_a_message_never_published_are_not_called_sent(view: Any, status: str) -> None:
    f = filing(
        view,
        status=status,
        published="",
        record_statuses=(("sent", 140),),
        rejected_records=0,
        error_codes=(),
        error_meanings=(),
        rejected_sellers=(),
    )
    row = row_of(view, f)
    text = row.text_content()
    assert "records: 140 not sent" in text and "140 sent" not in text
    assert "not a published file" in text and not row.xpath(".//a[@class='download']")


def test_a_published_message_downloads_from_its_row_whatever_run_came_after(view: Any) -> None:
    row = row_of(view, filing(view, status="published", rejected_records=0, error_codes=(), error_meanings=()))
    [link] = row.xpath(".//a[@class='download']")
    assert link.get("href") == "files/LT/LT2025LTAAAA.xml"
    assert "records: 25 accepted, 2 rejected" in row.text_content()  # an answered record keeps its word


def test_the_figures_that_differ_are_explained_with_the_manifests_numbers(view: Any) -> None:
    """5 reportable sellers; 4 go to DE and 2 to FR (6 pairs: one seller to both); DE gets 3 new
    records and a correction file with 1 correction and 1 deletion; FR 2 new: 7 sellers in files.
    3 + 2 = 5 new records for 6 pairs: one pair is filed already."""
    manifest = {
        "summary": {"reportable": 5, "sellers_per_authority": {"DE": 4, "FR": 2}},
        "files": [
            {"authority": "DE", "sellers": 3, "records": {"new": 3}},
            {"authority": "DE", "sellers": 2, "records": {"correction": 1, "deletion": 1}},
            {"authority": "FR", "sellers": 2, "records": {"new": 2}},
        ],
    }
    assert view.figures_explained(manifest) == [
        "Reportable sellers counts each seller once (5); Sellers in the files counts a seller once per file it is "
        "in (7).",
        "1 more because some sellers are reported to more than one authority: 6 seller-authority pairs for 5 sellers.",
        "The files also carry 1 correction(s), 1 deletion(s) of sellers filed earlier.",
        "1 seller-authority pair(s) are in no new-information record: the ledger holds them as filed already "
        "(unchanged, or filed again as a correction).",
    ]
    same = {
        "summary": {"reportable": 2, "sellers_per_authority": {"DE": 2}},
        "files": [{"sellers": 2, "records": {"new": 2}}],
    }
    assert view.figures_explained(same) == []


def test_an_assumed_operators_sellers_are_said_to_be_reported_by_the_assuming_operator(view: Any) -> None:
    """Another operator assumes this operator's reporting ([assuming_operator]): its 3 reportable
    sellers are in no file of its own, and the view says why, not that the ledger holds them."""
    manifest = {
        "assumed_reporting": True,
        "summary": {"reportable": 3, "sellers_per_authority": {"LT": 3}},
        "files": [{"authority": "LT", "sellers": 0, "records": {}}],
    }
    assert view.figures_explained(manifest) == [
        "Reportable sellers counts each seller once (3); Sellers in the files counts a seller once per file it is "
        "in (0).",
        "Another platform operator assumes this operator's reporting ([assuming_operator]): the 3 reportable "
        "seller(s) are reported in that operator's filing; this operator's files declare it (AssumedReporting) and "
        "report no seller.",
    ]
    # the run in which it became assumed also deletes the 2 sellers it had filed itself
    switched = manifest | {
        "files": [
            {"authority": "LT", "sellers": 2, "records": {"deletion": 2}},
            {"authority": "LT", "sellers": 0, "records": {}},
        ]
    }
    assert view.figures_explained(switched)[1:] == [
        view.figures_explained(manifest)[1],
        "The files also carry 2 deletion(s) of sellers filed earlier.",
    ]


# ------------------------------------------------------------------------------------ the runs


def manifest(run_id: str, environment: str, timestamp: str, files: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "reporting_year": YEAR,
        "environment": environment,
        "preview": False,
        "as_of": "2026-01-14",
        "timestamp_utc": timestamp,
        "files": [
            {"authority": f[:2], "file": f, "message_ref_id": f[3:-4], "sellers": 1, "records": {"new": 1}}
            for f in files
        ],
        "reports": ["reports/due_diligence.html", "reports/run_summary.html", "reports/due_diligence.csv"],
        "summary": {"reportable": 1, "decisions": {"reported": 1}, "sellers_per_authority": {f[:2]: 1 for f in files}},
        "run_copy": f"runs/{run_id}",
        **extra,
    }


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def year_dir(tmp_path: Path) -> Path:
    """A production run (LT, DE), then a test rerun of LT, and an older preview: the year's
    ``manifest.json`` is the test rerun's; each run kept under ``runs/`` with its reports."""
    out = tmp_path / "out" / str(YEAR)
    runs = {
        PREVIEW_RUN: manifest(PREVIEW_RUN, "test", "2026-01-10T06:00:00", ["DE/DEPREVIEW.xml"], preview=True),
        PROD_RUN: manifest(PROD_RUN, "prod", "2026-01-15T06:00:00", ["LT/LTPROD.xml", "DE/DEPROD.xml"]),
        TEST_RUN: manifest(TEST_RUN, "test", "2026-01-20T07:00:00", ["LT/LTTEST.xml"]),
    }
    for run_id, m in runs.items():
        write(out / "runs" / run_id / "manifest.json", json.dumps(m))
        for f in m["files"]:
            write(out / f["file"], f"<xml>{f['file']}</xml>")
        for name in ("run_summary.html", "due_diligence.html"):
            write(out / "runs" / run_id / "reports" / name, f"{name} of {run_id}")
    write(out / "manifest.json", json.dumps(runs[TEST_RUN]))
    for name in ("run_summary.html", "due_diligence.html"):
        write(out / "reports" / name, f"{name} of {TEST_RUN}")
    return out


def test_a_test_rerun_never_hides_the_latest_production_run(view: Any, year_dir: Path) -> None:
    runs, problems = view.runs_of(year_dir)
    assert problems == []
    assert [(r.run_id, r.environment) for r in runs] == [(TEST_RUN, "test"), (PROD_RUN, "prod"), (PREVIEW_RUN, "test")]
    y = view.YearView(YEAR, json.loads((year_dir / "manifest.json").read_text()), "", {}, runs=runs)
    assert y.latest("prod").run_id == PROD_RUN and y.latest("test").run_id == TEST_RUN

    page = html.fromstring(view.year_page(y, None))
    prod = page.xpath("//h2[@id='run-prod']")[0]
    assert prod.text_content() == "Latest production run"
    assert PROD_RUN in page.xpath("//table[@id='run-facts-prod']")[0].text_content()
    assert TEST_RUN in page.xpath("//table[@id='run-facts-test']")[0].text_content()
    # each with its own reports, kept with the run
    assert page.xpath("//a[@id='run-summary-report-prod']/@href") == [f"files/runs/{PROD_RUN}/reports/run_summary.html"]
    assert page.xpath("//a[@id='run-due-diligence-report-test']/@href") == [
        f"files/runs/{TEST_RUN}/reports/due_diligence.html"
    ]
    assert [a.get("title") for a in page.xpath("//table[@id='files-prod']//a[@class='download']")] == [
        "LTPROD.xml",
        "DEPROD.xml",
    ]
    # the preview is an earlier run, listed with its reports
    [earlier] = page.xpath("//table[@id='earlier-runs']//tr[td]")
    assert PREVIEW_RUN in earlier.text_content() and "test preview" in earlier.text_content()


def test_every_kept_runs_files_stay_reachable_and_nothing_else(view: Any, year_dir: Path) -> None:
    src = view.Sources(None, year_dir.parent)
    for path in (
        "LT/LTPROD.xml",  # the production run's, after a test rerun
        "DE/DEPREVIEW.xml",
        "LT/LTTEST.xml",
        f"runs/{PROD_RUN}/reports/due_diligence.html",
        "reports/run_summary.html",
    ):
        assert view.reachable_file(src, YEAR, path) == (year_dir / path).resolve(), path
    for path in (
        "manifest.json",
        f"runs/{PROD_RUN}/manifest.json",
        f"runs/{PROD_RUN}/../../manifest.json",
        "LT/unknown.xml",
        "runs",
    ):
        assert view.reachable_file(src, YEAR, path) is None, path
    assert view.reachable_file(src, YEAR + 1, "LT/LTPROD.xml") is None


def test_an_older_run_without_a_kept_copy_is_still_shown_from_the_years_manifest(view: Any, tmp_path: Path) -> None:
    out = tmp_path / str(YEAR)
    m = manifest(PROD_RUN, "prod", "2026-01-15T06:00:00", ["LT/LTPROD.xml"])
    del m["run_copy"]
    write(out / "manifest.json", json.dumps(m))
    [run] = view.runs_of(out)[0]
    assert (run.folder, run.environment) == ("", "prod")
    assert run.report("run_summary.html") == "reports/run_summary.html"


# ------------------------------------------------------------------------------ due diligence

ROWS = [
    {"seller_id": "S3", "kind": "TIN malformed", "finding": "f3", "action": "a", "identifier": "tin",
     "country": "DE", "value_masked": "***123", "authorities": "DE", "seller_type": "individual"},
    {"seller_id": "S1", "kind": "TIN unknown", "finding": "f1", "action": "a", "identifier": "tin",
     "country": "", "value_masked": "", "authorities": "DE;FR", "seller_type": "entity"},
    {"seller_id": "=HYPERLINK(1)", "kind": "VAT malformed", "finding": "f2", "action": "a", "identifier": "vat",
     "country": "FR", "value_masked": "***999", "authorities": "FR", "seller_type": "entity"},
]  # fmt: skip


def test_the_due_diligence_list_filters_and_sorts(view: Any) -> None:
    q = view.DueDiligenceQuery
    assert [r["seller_id"] for r in view.select_findings(ROWS, q())] == ["=HYPERLINK(1)", "S1", "S3"]
    assert [r["seller_id"] for r in view.select_findings(ROWS, q(sort="kind", desc=True))] == [
        "=HYPERLINK(1)",
        "S1",
        "S3",
    ]
    assert [r["seller_id"] for r in view.select_findings(ROWS, q(sort="country"))] == ["S1", "S3", "=HYPERLINK(1)"]
    assert [r["seller_id"] for r in view.select_findings(ROWS, q(authority="FR"))] == ["=HYPERLINK(1)", "S1"]
    assert [r["seller_id"] for r in view.select_findings(ROWS, q(kind="TIN malformed"))] == ["S3"]
    assert [r["seller_id"] for r in view.select_findings(ROWS, q(q="s1"))] == ["S1"]
    assert q(kind="TIN unknown", sort="country", desc=True).params(order="asc") == (
        "kind=TIN+unknown&sort=country&order=asc"
    )


def test_the_export_is_formula_safe_and_the_page_masks_without_permission(view: Any) -> None:
    text = view.findings_csv(view.select_findings(ROWS, view.DueDiligenceQuery(authority="FR")), masked_values=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["seller_id"] for r in rows] == ["'=HYPERLINK(1)", "S1"]
    assert rows[0]["value_masked"] == "***999"

    run = view.Run(manifest(PROD_RUN, "prod", "2026-01-15T06:00:00", []), f"runs/{PROD_RUN}", ())
    query = view.DueDiligenceQuery(country="DE")
    full = html.fromstring(view.due_diligence_page(YEAR, run, ROWS, query, []))
    assert full.xpath("//p[@id='dd-count']")[0].text_content().startswith("1 of 3 finding(s), 1 seller(s).")
    assert full.xpath("//a[@id='dd-export']/@href") == ["due-diligence.csv?country=DE&sort=seller_id&order=asc"]
    assert "***123" in full.xpath("//table[@id='dd-findings']")[0].text_content()
    assert full.xpath("//a[@id='back-to-year']/@href") == ["./"]
    viewer = html.fromstring(view.due_diligence_page(YEAR, run, ROWS, query, [], may_download=False))
    assert "***123" not in viewer.text_content() and not viewer.xpath("//a[@id='dd-export']")
    assert "Value (masked)" not in viewer.xpath("//table[@id='dd-findings']")[0].text_content()


def test_a_kept_run_summary_is_open_to_viewers_and_nothing_else_is(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("airflow")
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_plugin

    assert dac7_plugin.open_to_viewers(f"runs/{PROD_RUN}/reports/run_summary.html")
    assert dac7_plugin.open_to_viewers("reports/run_summary.html")
    for path in (
        f"runs/{PROD_RUN}/reports/due_diligence.html",
        f"runs/{PROD_RUN}/reports/run_summary.html/../../manifest.json",
        "runs/../reports/run_summary.html",
        "LT/LTPROD.xml",
    ):
        assert not dac7_plugin.open_to_viewers(path), path


def test_the_due_diligence_list_is_paged_keeping_filters_and_sort_and_read_filtered(view: Any, tmp_path: Path) -> None:
    out = tmp_path / str(YEAR)
    m = manifest(PROD_RUN, "prod", "2026-01-15T06:00:00", [])
    write(out / "runs" / PROD_RUN / "manifest.json", json.dumps(m))
    rows = [
        {**ROWS[0], "seller_id": f"S{i:04d}", "kind": "TIN malformed" if i % 2 else "TIN unknown"} for i in range(450)
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(ROWS[0]))
    writer.writeheader()
    writer.writerows(rows)
    write(out / "runs" / PROD_RUN / "reports" / "due_diligence.csv", buf.getvalue())
    src = view.Sources(None, tmp_path)

    query = view.DueDiligenceQuery(kind="TIN unknown", sort="seller_id", desc=True, page=2)
    run, found, problems = view.due_diligence_findings(src, YEAR, query)
    assert (run.run_id, problems, found.total) == (PROD_RUN, [], 450)
    assert len(found.rows) == 225 and found.rows[0]["seller_id"] == "S0448"  # only the rows that pass are held
    assert found.options["kind"] == ["TIN malformed", "TIN unknown"]

    page = html.fromstring(
        view.due_diligence_page(YEAR, run, found.rows, query, problems, total=found.total, options=found.options)
    )
    assert len(page.xpath("//table[@id='dd-findings']//tr[td]")) == 25  # 225 = 200 + 25
    assert page.get_element_by_id("dd-pages").text_content().startswith("Findings 201-225 of 225, page 2 of 2.")
    assert page.xpath("//p[@id='dd-pages']/a/@href") == [
        "due-diligence?kind=TIN+unknown&sort=seller_id&order=desc"  # page 1: no page parameter
    ]
    assert page.xpath("//a[@id='dd-export']/@href") == ["due-diligence.csv?kind=TIN+unknown&sort=seller_id&order=desc"]
    assert page.get_element_by_id("dd-count").text_content().startswith("225 of 450 finding(s)")
    first = html.fromstring(
        view.due_diligence_page(
            YEAR, run, found.rows, view.DueDiligenceQuery(kind="TIN unknown", sort="seller_id", desc=True), problems
        )
    )
    assert len(first.xpath("//table[@id='dd-findings']//tr[td]")) == 200
    assert first.xpath("//p[@id='dd-pages']/a/@href") == [
        "due-diligence?kind=TIN+unknown&sort=seller_id&order=desc&page=2"
    ]
    # a sort link starts again at the first page
    assert all("page=" not in h for h in page.xpath("//table[@id='dd-findings']//th/a/@href"))
    # without filters: every finding of the run
    unfiltered = view.due_diligence_findings(src, YEAR, view.DueDiligenceQuery(run=query.run))[1]
    assert len(unfiltered.rows) == unfiltered.total == 450


def test_a_partial_rejection_is_unnamed_only_when_no_record_was_ever_named(view: Any) -> None:
    """A record the authority named and the operator corrected since is not rejected any more,
    but it was named: the message is not one whose rejected records are unknown."""
    unnamed = filing(view, status="accepted", outcome="partially_rejected", rejected_records=0, named_rejections=0)
    corrected = filing(view, status="accepted", outcome="partially_rejected", rejected_records=0, named_rejections=1)
    open_one = filing(view, status="accepted", outcome="partially_rejected", rejected_records=1, named_rejections=1)
    assert [f.unnamed_rejection for f in (unnamed, corrected, open_one)] == [True, False, False]
