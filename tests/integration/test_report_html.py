"""The due-diligence report as people see it: rendered by headless Chromium, counts on screen.

A small run (test environment) seeds sellers whose identifiers or data need action. The page must
show the counts that the run's own CSV (``reports/due_diligence.csv``) implies, each inside the
viewport, not hidden or covered, and drawn: a real screenshot has glyphs where each count is.

The counts are found through the page's hooks for tools, not its layout: ``#sellers-count``,
``#findings-count``, ``#quarantined-count``, and per kind of finding a ``[data-kind]`` row whose
count is its ``[id^="count-"]`` element. The kinds are whatever the page lists: each must show the
CSV's number of findings of that kind (0 when the CSV has none), and each kind in the CSV must be
listed.
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from browser import Chromium, Png, chromium_or_skip, decode_png
from builders import Marketplace, write_config

from reporting.pipeline import run

pytestmark = pytest.mark.timeout(60)

RUN_ID = "3d9b1f0e-6a2c-4e8d-b7f5-1c0a9e8d7b6a"
WIDTH, HEIGHT = 1280, 800
GOOD_IBAN = "LT121000011101001000"
BAD_IBAN = "LT121000011101001001"  # the same with a wrong check

#: (seller, identifier) of every problem seeded below: what the run's CSV must list.
SEEDED = {
    ("S-NOTIN-A", "tin"),
    ("S-NOTIN-B", "tin"),
    ("S-NOTIN-B", "iban"),
    ("S-BADTIN", "tin"),
    ("S-BADIBAN", "iban"),
    ("S-BADVAT", "vat"),
    ("S-NOCOUNTRY", "data"),
    ("S-NOBIRTH", "data"),
}

#: The kinds whose sellers are not reported until their data is corrected.
QUARANTINE_KINDS = {"quarantined", "threshold crossed without complete data"}

#: The page's totals, by element id, and how the CSV's rows give each.
TOTALS: dict[str, Callable[[list[dict[str, str]]], int]] = {
    "sellers-count": lambda rows: len({r["seller_id"] for r in rows}),
    "findings-count": len,
    "quarantined-count": lambda rows: len({r["seller_id"] for r in rows if r["kind"] in QUARANTINE_KINDS}),
}

#: Each count on the page: its text, the box of its glyphs, and whether a reader can see it.
READ_COUNTS = r"""
(totalIds) => {
  const read = (element) => {
    if (!element) return null;
    const range = document.createRange();
    range.selectNodeContents(element);
    const box = range.getBoundingClientRect();
    const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
    return {
      text: element.textContent.trim(),
      left: box.left, top: box.top, right: box.right, bottom: box.bottom,
      shown: element.checkVisibility({opacityProperty: true, visibilityProperty: true})
        && hit !== null && element.contains(hit),
    };
  };
  return {
    viewport: [innerWidth, innerHeight],
    totals: Object.fromEntries(totalIds.map((id) => [id, read(document.getElementById(id))])),
    kinds: Object.fromEntries([...document.querySelectorAll("[data-kind]")].map(
      (row) => [row.dataset.kind, read(row.querySelector('[id^="count-"]'))])),
  };
}
"""


def seed() -> Marketplace:
    m = Marketplace()
    m.seller("S-OK")  # a valid LT personal code and IBAN: needs no action
    m.account("S-OK", GOOD_IBAN)
    m.seller("S-NOTIN-A", tin=None)
    m.seller("S-NOTIN-B", tin=None)
    m.account("S-NOTIN-B", BAD_IBAN)
    m.seller("S-BADTIN", tin="39001010001")  # wrong check digit
    m.seller("S-BADIBAN")
    m.account("S-BADIBAN", BAD_IBAN)
    m.seller("S-BADVAT", vat_id="LT100000000001")
    m.seller("S-NOCOUNTRY", country=None, tin=None)  # quarantined
    for seller in m.rows["sellers"]:
        m.sales(seller["seller_id"], 30, 10_00)  # 30 sales: reportable
    m.seller("S-NOBIRTH", tin=None, birth_city=None)  # neither TIN nor place of birth (EU rule 40140)
    m.sales("S-NOBIRTH", 40, 100_00)  # ... and over the thresholds
    return m


def test_due_diligence_page_shows_its_counts_in_chromium(tmp_path: Path) -> None:
    executable = chromium_or_skip()
    run(
        config_path=write_config(tmp_path / "dac7.toml", environment="test"),
        source_url=seed().write(f"sqlite:///{tmp_path}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "staging",
        run_id=RUN_ID,
    )
    reports = tmp_path / "out" / "reports"
    with (reports / "due_diligence.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    unlisted = SEEDED - {(r["seller_id"], r["identifier"]) for r in rows}
    assert not unlisted, f"seeded problems missing from the CSV: {sorted(unlisted)}"
    assert "S-OK" not in {r["seller_id"] for r in rows}

    with Chromium.launch(tmp_path / "chromium", executable=executable, width=WIDTH, height=HEIGHT) as browser:
        browser.navigate((reports / "due_diligence.html").as_uri())
        page = browser.call(READ_COUNTS, list(TOTALS))
        png = browser.screenshot()
    (tmp_path / "due_diligence.png").write_bytes(png)  # to look at when the test fails

    assert page["viewport"] == [WIDTH, HEIGHT]
    per_kind = Counter(r["kind"] for r in rows)
    assert set(per_kind) <= set(page["kinds"]), "a kind of finding in the CSV has no count on the page"
    expected = {f"#{id_}": total(rows) for id_, total in TOTALS.items()}
    expected |= {f"[data-kind={kind!r}]": per_kind[kind] for kind in page["kinds"]}
    shown = {f"#{id_}": count for id_, count in page["totals"].items()}
    shown |= {f"[data-kind={kind!r}]": count for kind, count in page["kinds"].items()}
    assert {hook: count and count["text"] for hook, count in shown.items()} == {
        hook: str(n) for hook, n in expected.items()
    }

    image = decode_png(png)
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    for hook, count in shown.items():
        assert_seen(hook, count, image)


def assert_seen(hook: str, count: dict[str, Any], image: Png) -> None:
    """The count is visible in the viewport, and the screenshot has glyphs in its box."""
    where = f"{hook} at ({count['left']:.0f}, {count['top']:.0f})-({count['right']:.0f}, {count['bottom']:.0f})"
    assert count["left"] < count["right"] and count["top"] < count["bottom"], f"{where} has no size"
    inside = min(count["left"], count["top"]) >= 0 and count["right"] <= image.width and count["bottom"] <= image.height
    assert inside, f"{where} is outside the viewport"
    assert count["shown"], f"{where} is hidden or covered"
    pixels = image.luminance(count["left"], count["top"], count["right"], count["bottom"])
    # Dark glyphs on a light background: a wide range and spread, not one flat colour.
    assert max(pixels) - min(pixels) > 100 and statistics.pvariance(pixels) > 200, f"{where} is not drawn"
