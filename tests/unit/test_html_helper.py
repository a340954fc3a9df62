"""The report writers' one HTML helper: escaped values, a whole page, owner-only atomic writes."""

from __future__ import annotations

import stat

from reporting.reports.html import Cell, Row, page, table, write_page


def test_page_escapes_the_title_and_keeps_the_body_as_given() -> None:
    text = page("DAC7 <2025> & co", "body{color:red}", "<p>ok</p>")
    assert text.startswith('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">')
    assert "<title>DAC7 &lt;2025&gt; &amp; co</title>" in text
    assert "<style>body{color:red}</style>" in text
    assert "\n<body>\n<p>ok</p>\n</body></html>\n" in text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text


def test_table_escapes_headers_and_cells() -> None:
    html = table(("Kind", "<b>"), [("a&b", "<script>x</script>")], attrs=' id="t"')
    assert html == (
        '<table id="t"><tr><th>Kind</th><th>&lt;b&gt;</th></tr>'
        "<tr><td>a&amp;b</td><td>&lt;script&gt;x&lt;/script&gt;</td></tr></table>"
    )


def test_table_rows_and_cells_carry_their_attributes() -> None:
    rows = [Row(("<a>", Cell("1,234", ' class="n"')), ' data-kind="a"'), ("b", "2")]
    assert table(("Kind", "Count"), rows) == (
        "<table><tr><th>Kind</th><th>Count</th></tr>"
        '<tr data-kind="a"><td>&lt;a&gt;</td><td class="n">1,234</td></tr>'
        "<tr><td>b</td><td>2</td></tr></table>"
    )


def test_write_page_is_owner_only_and_leaves_no_temporary_file(tmp_path) -> None:
    target = tmp_path / "report.html"
    assert write_page(target, "one") == target
    write_page(target, "two")
    assert target.read_text(encoding="utf-8") == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
