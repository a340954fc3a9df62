"""Where the tests find their reference material, and what a missing test resource does.

The official schemas and samples the tests compare against are of two kinds
(tests/reference/README.md says which is which, and why):

* vendored: ``tests/reference/<xsd|samples>/<folder>/...``, in the repository, because their
  licence or their publisher's reuse policy allows it: ``vendored(...)``;
* outside: ``../shared/reference/<xsd|samples>/<folder>/...`` beside the checkout, for the
  folders whose terms do not allow redistribution (``OUTSIDE_FOLDERS``): ``outside(...)``. A
  test that reads one carries the marker ``outside_reference``.

A missing test resource (a reference file, a tool such as gpg) fails the test when the
environment variable ``CI`` is set, since CI must run every test, and skips it with a message
otherwise: ``require_file``, ``require_tool``, ``require``; ``require_module`` at the top of a
module whose collection needs the files (the module is then one test, ``reference_files``, that
fails or skips). tests/conftest.py does the same for the database servers, tests/browser.py for
Chromium.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
VENDORED = TESTS / "reference"
OUTSIDE = REPO.parent / "shared" / "reference"

#: The folders of the reference material that stay outside the repository (their terms do not
#: allow redistribution, see tests/reference/README.md), with the files the tests read in each.
OUTSIDE_FOLDERS: dict[str, tuple[str, ...]] = {
    "xsd/hu-nav": (
        "DPIXML_v1.0.xsd",
        "isodpitypes_v1.0.xsd",
        "oecddpitypes_v1.0.xsd",
        "validator-zip/DPIXML_20231019.xsd",
        "validator-zip/isodpitypes_v1.0.xsd",
        "validator-zip/oecddpitypes_v1.0.xsd",
    ),
    "xsd/it-ade-sogei__client-dac7-jar": (
        "xsd/telematico/fornituraDPIT_v1.0.0.xsd",
        "xsd/telematico/telematico_v1.xsd",
        "xsd/DAC7/DPIXML_v1.09.xsd",
        "xsd/DAC7/isodpitypes_v1.0.xsd",
        "xsd/DAC7/oecddpitypes_v1.0.xsd",
        "config/description.properties",
        "config/configuration.properties",
        "config/plugin.xml",
    ),
    "samples/it-ade-sogei__dac7-be-test": (
        "DPIXML_v1.09_2.xml",
        "TDAC7_TEST0112_INI-MSG1-5.xml",
        "Valid-Send-InitialMsg-AssumedPO-010.xml",
        "corretto.xml",
        "initialMessage_Prova.xml",
    ),
}

#: The marker of a test that reads a file of ``OUTSIDE_FOLDERS``.
outside_reference = pytest.mark.outside_reference


def outside_reference_present() -> bool:
    """Whether every file of ``OUTSIDE_FOLDERS`` lies beside the checkout."""
    return all(outside(folder, name).is_file() for folder, names in OUTSIDE_FOLDERS.items() for name in names)


def vendored(*parts: str) -> Path:
    """A path under tests/reference (in the repository)."""
    return VENDORED.joinpath(*parts)


def outside(*parts: str) -> Path:
    """A path under ../shared/reference, beside the checkout (not in the repository)."""
    return OUTSIDE.joinpath(*parts)


def is_outside(path: Path) -> bool:
    return path.is_relative_to(OUTSIDE)


def sample(name: str) -> Path:
    """A reference sample by its name ``<folder>/<file>``: vendored, or outside for a folder of
    ``OUTSIDE_FOLDERS``."""
    folder = name.split("/", 1)[0]
    return outside("samples", name) if f"samples/{folder}" in OUTSIDE_FOLDERS else vendored("samples", name)


def sample_name(path: Path) -> str:
    """``<folder>/<file>`` of a reference sample, vendored or outside."""
    root = outside("samples") if is_outside(path) else vendored("samples")
    return path.relative_to(root).as_posix()


def sample_files() -> list[Path]:
    """Every reference sample, in the order of their names: the vendored ones, and those of the
    outside folders whether present or not (a test that reads one requires it)."""
    found = list(vendored("samples").rglob("*.xml"))
    for folder, names in OUTSIDE_FOLDERS.items():
        if folder.startswith("samples/"):
            found += [outside(folder, name) for name in names]
    return sorted(found, key=sample_name)


def marks(path: Path) -> list[pytest.MarkDecorator]:
    """The marks of a test parametrized with ``path``: ``outside_reference`` for an outside file."""
    return [outside_reference] if is_outside(path) else []


def _missing(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run this test", pytrace=False)
    skipped = pytest.skip.Exception(message)
    skipped._use_item_location = True  # reported at the test, not here (as a skip in a fixture is)
    raise skipped


def _describe(paths: Iterable[Path]) -> str:
    paths = list(paths)
    names = ", ".join(str(p) for p in paths)
    if any(is_outside(p) for p in paths):
        return (
            f"reference files absent ({names}): they lie beside the checkout in ../shared/reference "
            "(their terms do not allow redistribution, see tests/reference/README.md)"
        )
    return f"reference files absent ({names}): tests/reference is part of the repository, restore it"


def require(present: bool, what: str) -> None:
    """Fail (in CI) or skip (elsewhere) unless ``present``; ``what`` names the missing resource."""
    if not present:
        _missing(f"missing: {what}")


def require_file(*paths: Path) -> None:
    """Fail (in CI) or skip (elsewhere) unless every path is a file."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        _missing(_describe(missing))


def require_tool(name: str, why: str) -> str:
    """The executable ``name`` on PATH; fail (in CI) or skip (elsewhere) when it is not installed."""
    found = shutil.which(name)
    if found is None:
        _missing(f"{name} is not installed ({why})")
    return found


class MissingResource(Exception):
    """Raised by ``require_module``: tests/conftest.py collects the module as one test,
    ``reference_files``, that skips or fails (a collection error would stop the whole session)."""

    def __init__(self, message: str, *, outside: bool) -> None:
        super().__init__(message)
        self.outside = outside


def require_module(*paths: Path) -> None:
    """At the top of a test module whose collection reads ``paths``: when one is missing, the
    module is collected as one test, ``reference_files``, which fails in CI and skips elsewhere,
    instead of its tests."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise MissingResource(_describe(missing), outside=any(is_outside(p) for p in missing))


class MissingResourceItem(pytest.Item):
    """The one test of a module that ``require_module`` stopped: it fails (CI) or skips."""

    def __init__(self, *, message: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        _missing(self.message)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.name


class ReferenceModule(pytest.Module):
    """A test module; one that raises ``MissingResource`` is collected as ``reference_files``."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        try:
            return list(super().collect())
        except MissingResource as exc:
            item = MissingResourceItem.from_parent(self, name="reference_files", message=str(exc))
            if exc.outside:
                item.add_marker(outside_reference)
            return [item]
