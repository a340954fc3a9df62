"""Seller statements in the DAC7 view, without a server: the counts section of the year page
(prominent as the due day approaches), the list of statements with and without the download
permission, and which statement pages the view serves. The view with a real Airflow and both
permissions: ``test_ui_view.py``."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import html
from statement_feeds import Run

from reporting.ledger import open_ledger
from reporting.ledger.statements import read_delivery_report

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_statements
    import dac7_view

    return dac7_view, dac7_statements


@pytest.fixture
def filed(tmp_path: Path) -> tuple[str, Run]:
    """A production filing of 2025 in DE with three statements: one sent, one failed, one pending;
    and a test filing whose statement is pending."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with open_ledger(url) as ledger:
        run = Run(ledger, tmp_path / "out", {"S1": 1, "S2": 2, "S3": 3}, environment="prod")
        made = datetime(2026, 1, 20, 9)  # before the deliveries below
        ledger.record_statements(run.feed(*(run.statement(s, f"st-{s.lower()}") for s in ("S1", "S2", "S3"))), at=made)
        test = Run(ledger, tmp_path / "out", {"S9": 1}, environment="test")
        ledger.record_statements(test.feed(test.statement("S9", "st-test"), name="test.jsonl"), at=made)
        report = tmp_path / "d.csv"
        report.write_text(
            "statement_id,time,status\nst-s1,2026-01-21T10:00:00Z,sent\nst-s2,2026-01-21T10:00:00Z,failed\n",
            encoding="utf-8",
        )
        ledger.mark_statements(read_delivery_report(report), source=report.name)
    return url, run


def year_page(plugins: Any, url: str, out: Path, today: date, may_download: bool = True) -> Any:
    view, _ = plugins
    src = view.Sources(url, out)
    return html.fromstring(view.year_page(view.year_view(src, 2025), None, may_download=may_download, today=today))


def test_the_year_page_counts_statements_per_authority_and_environment(plugins: Any, filed: Any) -> None:
    url, run = filed
    page = year_page(plugins, url, run.out, date(2025, 12, 1))
    rows = [[c.text_content() for c in tr.xpath("td")] for tr in page.xpath("//table[@id='statements-counts']//tr")]
    assert rows[1:] == [
        ["DE", "production", "1", "1", "1", "0", "2026-01-31 (61 days left)"],
        ["DE", "test", "1", "0", "0", "0", "2026-01-31 (61 days left)"],
    ]
    assert not page.xpath("//*[starts-with(@id, 'statements-warning')]")  # two months ahead: no warning


@pytest.mark.parametrize(
    ("today", "said"),
    [(date(2025, 12, 31), "31 days left"), (date(2026, 1, 31), "due today"), (date(2026, 2, 3), "3 days overdue")],
)
def test_unsent_production_statements_are_prominent_as_the_due_day_approaches(
    plugins: Any, filed: Any, today: date, said: str
) -> None:
    url, run = filed
    page = year_page(plugins, url, run.out, today, may_download=False)
    [warning] = page.xpath("//p[@id='statements-warning-DE']")
    assert warning.text_content() == (
        f"2 production statement(s) of 2025 filed with DE not delivered (1 pending, 1 failed): due 2026-01-31, {said}."
    )
    # the warning is about production: the test statement is not in it
    assert page.xpath("//p[@id='statements-warning-DE']/following-sibling::table[@id='statements-counts']")


def test_the_list_links_pages_only_with_the_download_permission(plugins: Any, filed: Any) -> None:
    view, statements = plugins
    url, run = filed
    items, more = statements.read_statements(view.Sources(url, run.out), 2025, None)
    assert [s.statement_id for s in items] == ["st-s1", "st-s2", "st-s3", "st-test"] and more is False
    page = html.fromstring(statements.statements_page(2025, items, None, may_download=True, more=False))
    assert [a.get("href") for a in page.xpath("//a[@class='download']")] == [
        "statements/st-s1",
        "statements/st-s2",
        "statements/st-s3",
        "statements/st-test",
    ]
    viewer = html.fromstring(statements.statements_page(2025, items, None, may_download=False, more=False))
    assert not viewer.xpath("//a[@class='download']") and "no download permission" in viewer.text_content()
    failed, _ = statements.read_statements(view.Sources(url, run.out), 2025, "failed")
    assert [s.statement_id for s in failed] == ["st-s2"]


def test_a_statement_page_is_served_only_from_its_place_with_its_bytes(plugins: Any, filed: Any) -> None:
    view, statements = plugins
    url, run = filed
    src = view.Sources(url, run.out)
    page = run.out / "2025" / "statements" / "st" / "st-s1.html"
    assert statements.statement_file(src, 2025, "st-s1") == page.resolve()
    assert statements.statement_file(src, 2024, "st-s1") is None  # another year's address
    assert statements.statement_file(src, 2025, "st-unknown") is None
    assert statements.statement_file(src, 2025, "../../ledger.sqlite3") is None
    assert statements.statement_file(view.Sources(None, run.out), 2025, "st-s1") is None
    page.write_text("<html>changed after it was recorded</html>", encoding="utf-8")
    assert statements.statement_file(src, 2025, "st-s1") is None  # its sha256 no longer matches
    # a page replaced by a symbolic link out of the statements folder is not served
    other = run.out / "secret.html"
    other.write_text("<html><body>statement</body></html>", encoding="utf-8")
    page2 = run.out / "2025" / "statements" / "st" / "st-s2.html"
    os.remove(page2)
    page2.symlink_to(other)
    assert statements.statement_file(src, 2025, "st-s2") is None


def test_a_statement_page_is_found_in_the_output_directory_recorded_with_it(plugins: Any, tmp_path: Path) -> None:
    """A run published elsewhere under the view's output root: its pages are found where the
    ledger recorded them; a run's pages outside the output root are never served."""
    view, statements = plugins
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    root = tmp_path / "out"
    with open_ledger(url) as ledger:
        inside = Run(ledger, root / "2025" / "rerun", {"S1": 1}, environment="prod", authority="FR")
        ledger.record_statements(inside.feed(inside.statement("S1", "st-in")), at=datetime(2026, 1, 20, 9))
        outside = Run(ledger, tmp_path / "elsewhere", {"S2": 1}, environment="prod", authority="IT")
        ledger.record_statements(outside.feed(outside.statement("S2", "st-out")), at=datetime(2026, 1, 20, 9))
    src = view.Sources(url, root)
    page = root / "2025" / "rerun" / "2025" / "statements" / "st" / "st-in.html"
    assert statements.statement_file(src, 2025, "st-in") == page.resolve()
    assert (tmp_path / "elsewhere" / "2025" / "statements" / "st" / "st-out.html").is_file()
    assert statements.statement_file(src, 2025, "st-out") is None


def test_without_the_download_permission_a_statement_is_shown_masked(plugins: Any, filed: Any) -> None:
    """Rendered from the content the ledger recorded, masked as the project masks identities:
    the TIN's last three characters, the name's initials; unknown, another year's or an erased
    statement: none."""
    import sqlalchemy as sa

    from reporting.ledger import schema as t

    view, statements = plugins
    url, run = filed
    src = view.Sources(url, run.out)
    page = statements.masked_statement(src, 2025, "st-s1")
    assert page is not None and 'id="masked"' in page and '<html lang="de-DE">' in page
    assert "***901" in page and "12345678901" not in page and "Example" not in page
    assert "st-s1" in page  # the ids of the filing stay: support finds the record
    (run.out / "2025" / "statements" / "st" / "st-s1.html").unlink()  # the page file is not needed
    assert statements.masked_statement(src, 2025, "st-s1") is not None
    assert statements.masked_statement(src, 2024, "st-s1") is None
    assert statements.masked_statement(src, 2025, "st-unknown") is None
    assert statements.masked_statement(view.Sources(None, run.out), 2025, "st-s1") is None
    with open_ledger(url) as ledger, ledger.engine.begin() as conn:
        conn.execute(sa.update(t.statements).where(t.statements.c.statement_id == "st-s2").values(content=None))
    assert statements.masked_statement(src, 2025, "st-s2") is None  # erased (PStTG § 24(3))


def test_a_statement_recorded_with_a_path_that_leaves_its_folder_is_never_served(plugins: Any, filed: Any) -> None:
    """The feed refuses such a path; should a row still hold one, the view does not follow it."""
    import sqlalchemy as sa

    from reporting.ledger import schema as t

    view, statements = plugins
    url, run = filed
    with open_ledger(url) as ledger, ledger.engine.begin() as conn:
        conn.execute(
            sa.update(t.statements)
            .where(t.statements.c.statement_id == "st-s3")
            .values(html_path="statements/../x.html")
        )
    (run.out / "2025" / "x.html").write_text("<html><body>statement</body></html>", encoding="utf-8")
    assert statements.statement_file(view.Sources(url, run.out), 2025, "st-s3") is None


def test_the_board_counts_statements_sent_and_unsent(plugins: Any, filed: Any) -> None:
    import dac7_board

    view, _ = plugins
    url, run = filed
    board = dac7_board.board_view(view.Sources(url, run.out), date(2026, 1, 25), {})
    keyed = {(r.environment, r.authority, r.year): r for r in board.rows}
    assert (keyed["prod", "DE", 2025].statements_sent, keyed["prod", "DE", 2025].statements_unsent) == (1, 2)
    assert (keyed["test", "DE", 2025].statements_sent, keyed["test", "DE", 2025].statements_unsent) == (0, 1)
    page = html.fromstring(dac7_board.board_page(board, token=None, may_import=False))
    [row] = [tr for tr in page.xpath("//table[@id='board-prod']/tr[td]") if "2025" in tr.text_content()]
    assert row.xpath("td")[-1].text_content().strip() == "1 sent, 2 unsent (due 2026-01-31)"
