"""Files that may hold personal data are the owner's from their first byte, and every CSV written
for people is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import os
import stat
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from builders import Marketplace, write_config

from reporting.pipeline import run

# (leading white space of an id is trimmed by the extract: a tab or CR cannot start one)
FORMULA_IDS = ["=1+cmd|' /C calc'!A0", "+SUM(1)", "-2+3", "@A1", '=HYPERLINK("http://x")']


def _market() -> Marketplace:
    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 30, 10_00)
    for seller_id in FORMULA_IDS:
        m.seller(seller_id)
        m.sales(seller_id, 30, 10_00)
    m.seller("=QUARANTINED", country=None, tin=None)  # quarantined: listed in quarantine.csv
    m.sales("=QUARANTINED", 30, 10_00)
    return m


def _run(tmp_path: Path, m: Marketplace) -> dict[str, Any]:
    return run(
        config_path=write_config(tmp_path / "dac7.toml"),
        source_url=m.write(f"sqlite:///{tmp_path}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
    ).manifest


def _cells(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            yield from row


def test_no_csv_cell_is_read_as_a_formula(tmp_path: Path) -> None:
    dags = str(Path(__file__).resolve().parents[2] / "dags")
    if dags not in sys.path:
        sys.path.insert(0, dags)
    from dac7_support.watch import write_watch_list

    manifest = _run(tmp_path, _market())
    assert manifest["summary"]["decisions"]["reported"] == 1 + len(FORMULA_IDS)
    reports = tmp_path / "out" / "reports"
    watch = write_watch_list(tmp_path / "out", tmp_path / "out" / "watch_list.csv")
    csvs = [*sorted(reports.glob("*.csv")), Path(watch["file"])]
    assert {p.name for p in csvs} >= {"decisions.csv", "figures.csv", "quarantine.csv", "due_diligence.csv"}
    for path in csvs:
        for value in _cells(path):
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (path.name, value)
    with (reports / "decisions.csv").open(encoding="utf-8", newline="") as fh:
        decisions = list(csv.DictReader(fh))
    ids = {row["seller_id"] for row in decisions}
    assert {"'" + s for s in FORMULA_IDS} | {"'=QUARANTINED", "S1"} <= ids  # shown as text, never lost
    assert "'=QUARANTINED" in (reports / "quarantine.csv").read_text(encoding="utf-8")
    # numbers stay numbers, and the Parquet files keep every value as the source had it
    with (reports / "figures.csv").open(encoding="utf-8", newline="") as fh:
        figures = list(csv.DictReader(fh))
    assert all(row["quarter"].isdigit() for row in figures)
    assert set(FORMULA_IDS) <= set(pq.read_table(reports / "decisions.parquet")["seller_id"].to_pylist())


def _modes(root: Path) -> list[tuple[str, str]]:
    """Every file under ``root`` that is not 0600, and every folder that is not 0700."""
    wrong = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if (path.is_dir() and mode != 0o700) or (path.is_file() and mode != 0o600):
            wrong.append((str(path.relative_to(root.parent)), oct(mode)))
    return wrong


def test_output_and_staging_are_the_owners_from_the_first_byte(tmp_path: Path) -> None:
    """With a permissive umask (0: files 0666, folders 0777 by default), every file a run creates
    under out/ and staging is 0600 and every folder 0700, and at the moment each is created
    (checked with an audit hook on every open for writing and every mkdir) the umask already
    makes it so. DuckDB, pyarrow and lxml create files in C, under the same umask."""
    m = _market()
    url = m.write(f"sqlite:///{tmp_path}/source.db")
    cfg = write_config(tmp_path / "dac7.toml", data_docs=True)
    watched = (str(tmp_path / "out"), str(tmp_path / "st"))
    seen: list[tuple[str, str, int]] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in ("open", "os.mkdir"):
            return
        path = args[0]
        if not isinstance(path, str | bytes | os.PathLike):
            return
        path = os.fsdecode(path)
        if not path.startswith(watched):
            return
        writing = (
            event == "os.mkdir"
            or (isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            or (isinstance(args[1], str) and any(c in args[1] for c in "wax+"))
        )
        if writing:
            current = os.umask(0o077)
            os.umask(current)
            seen.append((event, path, current))

    sys.addaudithook(hook)  # audit hooks cannot be removed: this one only records, and only here
    previous = os.umask(0)
    try:
        run(
            config_path=cfg,
            source_url=url,
            year=2025,
            as_of=date(2026, 1, 31),
            out_dir=tmp_path / "out",
            staging_root=tmp_path / "st",
        )
    finally:
        os.umask(previous)
        watched = ("\0",)  # the hook stays installed: from now on it matches nothing
    assert seen, "the audit hook saw no file being created"
    assert [(e, p) for e, p, mask in seen if mask != 0o077] == []
    assert _modes(tmp_path / "out") == []
    assert _modes(tmp_path / "st") == []


def test_a_folder_made_for_the_output_is_0700_whatever_the_umask(tmp_path: Path) -> None:
    from reporting.private import private_copy, private_dirs

    previous = os.umask(0)
    try:
        deep = private_dirs(tmp_path / "a" / "b" / "c")
        (tmp_path / "src").write_bytes(b"x")
        private_copy(tmp_path / "src", deep / "f")
    finally:
        os.umask(previous)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", deep):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((deep / "f").stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        private_copy(tmp_path / "src", deep / "f")


def test_the_published_data_docs_load_nothing_from_elsewhere(tmp_path: Path) -> None:
    """Great Expectations' pages load scripts from five CDNs, remote style sheets and a remote
    logo; published, they hold no script at all and nothing from another origin."""
    import re

    run(
        config_path=write_config(tmp_path / "dac7.toml", data_docs=True),
        source_url=_market().write(f"sqlite:///{tmp_path}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
    )
    pages = list((tmp_path / "out" / "reports" / "data-docs").rglob("*.html"))
    assert len(pages) > 10
    remote = re.compile(r"<(?:script|link|img)\b[^>]*(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.IGNORECASE)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text.lower(), page
        assert not remote.search(text), (page, remote.search(text))
        assert "<table" in text or "index" in page.name, page  # the content stays
    staged = list((tmp_path / "st").rglob("data-docs/**/*.html"))
    assert staged and any("<script" in p.read_text(encoding="utf-8") for p in staged)  # what GX wrote
