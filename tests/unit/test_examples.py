"""examples/: each configuration files in the profile its folder is named after, and the committed
database and XML are what examples/make_examples.py makes again, byte for byte (the XML) and row
for row (the database). After a change of a filing on purpose: ``make examples``, then review the
diff, as for the golden files."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from types import ModuleType

import pytest

from reporting.authorities import EU_GENERIC, select_profile
from reporting.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def make_examples() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        return list(con.iterdump())


def xml_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root / "xml")): p.read_bytes() for p in sorted((root / "xml").rglob("*.xml"))}


def test_each_configuration_files_in_the_profile_of_its_folder() -> None:
    for profile, path in make_examples().PROFILES.items():
        config = load_config(path)
        filing_state = config.operator.country
        chosen = select_profile(filing_state, config)
        if profile == "eu":
            assert chosen is EU_GENERIC, f"{path.name} files in {filing_state}: expected the EU generic edition"
        else:
            assert (filing_state, chosen.code) == (profile.upper(), profile.upper()), path.name
        assert config.reporting.environment == "test", f"{path.name}: the examples are never filings"


def test_every_profile_has_its_committed_xml() -> None:
    committed = xml_files(EXAMPLES)
    assert sorted({name.split("/")[0] for name in committed}) == sorted(make_examples().PROFILES)


@pytest.mark.slow
def test_the_examples_are_made_again_identical(tmp_path: Path) -> None:
    make_examples().make_examples(tmp_path)
    assert xml_files(tmp_path) == xml_files(EXAMPLES), "examples/xml differs: run make examples and review the diff"
    assert rows(tmp_path / "marketplace.db") == rows(EXAMPLES / "marketplace.db")
