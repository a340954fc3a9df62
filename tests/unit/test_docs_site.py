"""The documentation: the site builds with ``mkdocs build --strict`` (a broken link or anchor, a
page left out of the navigation fails it), every page of the navigation exists, and every link of
README.md resolves to a file of the repository (and to a heading of it, where it names one).

Without mkdocs (the dev extra) the build skips outside CI and fails under ``CI=true``."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from resources import require

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

#: [text](target) and ![alt](target) in Markdown, outside code spans and blocks
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(markdown: str) -> str:
    """The text of a Markdown page without its fenced code blocks and code spans."""
    without_blocks = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", without_blocks)


def slug(heading: str) -> str:
    """The anchor of a heading, as MkDocs's table of contents (and GitHub) make it."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    blocks_removed = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(m) for m in re.findall(r"^#{1,6} (.+?)\s*$", blocks_removed, flags=re.M)}


def nav_pages(nav: object) -> Iterator[str]:
    """Every page file named in mkdocs.yml's nav, however deeply nested."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from nav_pages(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from nav_pages(value)


def require_mkdocs() -> None:
    require(importlib.util.find_spec("mkdocs") is not None, "mkdocs (the dev extra: make venv)")


def test_the_site_builds_strict(tmp_path: Path) -> None:
    require_mkdocs()
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    command = ["build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)]
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "index.html").is_file()
    assert (site / "guide" / "cli.html").is_file()  # use_directory_urls: false, the site opens from a folder
    # offline: the theme fetches no web font
    assert "fonts.googleapis.com" not in (site / "index.html").read_text(encoding="utf-8")


def test_every_page_of_the_navigation_exists_and_every_page_is_in_it() -> None:
    require_mkdocs()
    import yaml  # a dependency of mkdocs

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = list(nav_pages(config["nav"]))
    assert pages, "mkdocs.yml has no nav"
    missing = [p for p in pages if not (DOCS / p).is_file()]
    assert not missing, f"pages in the nav but not under docs/: {missing}"
    left_out = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if str(p.relative_to(DOCS)) not in pages)
    assert not left_out, f"pages under docs/ missing from the nav: {left_out}"


def test_every_link_of_the_readme_resolves() -> None:
    readme = ROOT / "README.md"
    links = LINK.findall(prose(readme.read_text(encoding="utf-8")))
    assert links, "README.md links to nothing"
    broken = []
    for target in links:
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (ROOT / path).resolve() if path else readme
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, "README.md: " + "; ".join(broken)


def test_the_readme_keeps_the_two_commands_and_stays_short() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    assert len(text.splitlines()) <= 200, "README.md is for a newcomer: move the detail into docs/"
