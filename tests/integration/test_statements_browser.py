"""A statement in each language as a seller sees it: rendered by headless Chromium, the page's
language set, its headings translated, and the figures on screen in the locale's format (the
group and decimal separators of each locale, with the right kind of space), drawn where they are;
the notice's date in the locale's long form, and a property listing's row (fr-BE)."""

from __future__ import annotations

import json
import statistics
from datetime import date
from pathlib import Path

import pytest
from babel.dates import format_date
from browser import Chromium, chromium_or_skip, decode_png
from builders import Marketplace, write_config

from reporting.pipeline import run

pytestmark = pytest.mark.timeout(120)

WIDTH, HEIGHT = 1100, 1400
NNBSP, NBSP = "\u202f", "\xa0"
#: language -> (the heading of the figures, Q2's consideration of 30 sales of EUR 411.50, 30 in words)
EXPECTED = {
    "en": ("What was reported", "€12,345.00"),
    "fr": ("Ce qui a été déclaré", f"12{NNBSP}345,00{NBSP}€"),
    "de": ("Was gemeldet wurde", f"12.345,00{NBSP}€"),
    "lt": ("Kas buvo pateikta", f"12{NBSP}345,00{NBSP}€"),
    "pl": ("Co zostało przekazane", f"12{NBSP}345,00{NBSP}€"),
    # French texts, Belgian formats; the seller rents out an apartment (a property row)
    "fr-BE": ("Ce qui a été déclaré", f"12{NNBSP}345,00{NBSP}€"),
}

READ = r"""
function () {
  const cell = document.querySelector('#activity-1 tbody tr:nth-child(2) td');
  const box = cell.getBoundingClientRect();
  cell.scrollIntoView({block: 'center'});
  const b = cell.getBoundingClientRect();
  const top = document.elementFromPoint((b.left + b.right) / 2, (b.top + b.bottom) / 2);
  const issued = document.querySelector('#issued time');
  return {
    lang: document.documentElement.lang,
    h2: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
    text: cell.textContent,
    scope: Array.from(document.querySelectorAll('#activity-1 th')).every(th => th.getAttribute('scope')),
    caption: document.querySelector('#activity-1 caption').textContent,
    box: [b.left, b.top, b.right, b.bottom],
    shown: top === cell || cell.contains(top),
    issued: issued && issued.textContent,
    issuedAt: issued && issued.getAttribute('datetime'),
    property: Array.from(document.querySelectorAll('dl dt'))
      .map(dt => [dt.textContent, dt.nextElementSibling.textContent]),
  };
}
"""


def test_a_statement_in_each_language_shows_its_figures_in_chromium(tmp_path: Path) -> None:
    executable = chromium_or_skip()
    m = Marketplace()
    for language in EXPECTED:
        seller = f"LT-{language.upper()}"
        m.seller(seller, first_name="Ona", last_name="Kazlauskiene", language=language)
        if language == "fr-BE":
            m.listing("L-FRBE", seller, land_registration_number="VLN-0042")
            # 30 nights in May: Q2 EUR 12,345.00 of an apartment rented 30 days
            m.sales(seller, 30, 411_50, activity="immovable_property", listing_id="L-FRBE", rented_days=1)
        else:
            m.sales(seller, 30, 411_50)  # 30 sales in May: Q2 EUR 12,345.00
    run(
        config_path=write_config(tmp_path / "dac7.toml"),
        source_url=m.write(f"sqlite:///{tmp_path}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "staging",
    )
    out = tmp_path / "out"
    statements = [json.loads(x) for x in (out / "statements" / "statements.jsonl").read_text("utf-8").splitlines()]
    pages = {s["language"]: out / s["html_path"] for s in statements}
    issued = {s["language"]: s["issued"] for s in statements}
    assert set(pages) == set(EXPECTED)
    with Chromium.launch(tmp_path / "chromium", executable=executable, width=WIDTH, height=HEIGHT) as browser:
        for language, (heading, figure) in EXPECTED.items():
            browser.navigate(pages[language].as_uri())
            seen = browser.call(READ)
            png = browser.screenshot()
            (tmp_path / f"statement-{language}.png").write_bytes(png)  # to look at when the test fails
            assert seen["lang"] == language
            assert heading in seen["h2"]
            assert seen["text"] == figure, (language, seen["text"])
            assert seen["scope"] and seen["caption"]
            assert seen["shown"], f"{language}: the figure is hidden or covered"
            # the notice's date, in the seller's locale (Babel's long form of the feed's ISO date)
            locale = language.replace("-", "_")
            assert seen["issuedAt"] == issued[language]
            assert seen["issued"] == format_date(date.fromisoformat(issued[language]), "long", locale=locale)
            if language == "fr-BE":
                rows = dict(seen["property"])
                assert rows["Type de bien"].startswith("Appartement") and "DPI905" in rows["Type de bien"]
                assert rows["Référence cadastrale"] == "VLN-0042" and rows["Jours de location"] == "30"
                assert "Vilnius" in rows["Adresse du bien"] and "Lituanie" in rows["Adresse du bien"]
            image = decode_png(png)
            left, top, right, bottom = seen["box"]
            assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height
            pixels = image.luminance(left, top, right, bottom)
            assert max(pixels) - min(pixels) > 100 and statistics.pvariance(pixels) > 200, f"{language}: not drawn"
