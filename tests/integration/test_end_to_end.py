"""End to end: generate a demo marketplace, run `dac7 run`, validate every file against the
official EU schema. The same on SQLite, PostgreSQL and MariaDB, with identical output bytes."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from resources import require_file, vendored

from dac7_demo import generate_demo
from reporting.cli import main
from reporting.pipeline import run
from reporting.results import LedgerFile, Manifest, PublishedFile, RunCounts

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0")
RUN_ID = "0b7e7a52-3f0e-4b8e-9d1c-5a6f7e8d9c01"
TIMESTAMP = datetime(2026, 1, 15, 6, 0, 0)
NS = {"dpi": "urn:oecd:ties:dpi:v1", "stf": "urn:oecd:ties:dpistf:v1"}


@pytest.fixture(scope="module")
def official_schema() -> etree.XMLSchema:
    main_xsd = OFFICIAL / "DPIXML_v1.0.xsd"
    require_file(main_xsd)
    return etree.XMLSchema(etree.parse(str(main_xsd)))


def assert_keys(value: dict[str, Any], kind: Any) -> None:
    """``value`` has the keys its TypedDict (:mod:`reporting.results`) names: every required one, no other."""
    assert kind.__required_keys__ <= value.keys() <= kind.__required_keys__ | kind.__optional_keys__, kind.__name__


def assert_published(out: Path, schema: etree.XMLSchema) -> dict[str, Any]:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"], "the demo must produce filings"
    assert_keys(manifest, Manifest)
    assert_keys(manifest["summary"], RunCounts)
    for f in manifest["files"]:
        assert_keys(f, PublishedFile)
    for f in manifest["published_files"]:
        assert_keys(f, LedgerFile)
    on_disk = sorted(str(p.relative_to(out)) for p in out.glob("*/*.xml"))
    assert on_disk == sorted(f["file"] for f in manifest["files"])
    for f in manifest["files"]:
        path = out / f["file"]
        doc = etree.parse(str(path))
        assert schema.validate(doc), f"{f['file']}: {schema.error_log}"
        assert f["bytes"] == path.stat().st_size
        assert f["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert path.stat().st_mode & 0o077 == 0  # readable by the owner only
        root = doc.getroot()
        assert root.findtext("dpi:MessageSpec/dpi:MessageRefId", namespaces=NS) == f["message_ref_id"]
        assert root.findtext("dpi:MessageSpec/dpi:ReceivingCountry", namespaces=NS) == f["authority"]
        assert len(root.findall("dpi:DPIBody/dpi:ReportableSeller", NS)) == f["sellers"]
        if not manifest["preview"]:
            continue  # the filing holds every reportable seller, wherever it lives
        for seller in root.iterfind("dpi:DPIBody/dpi:ReportableSeller", NS):
            # EU rule 40070: what a state receives: sellers resident there, or with a property there
            residences = {e.text for e in seller.iterfind(".//dpi:ResCountryCode", NS)}
            properties = {e.text for e in seller.iterfind(".//dpi:PropertyListing/dpi:Address/dpi:CountryCode", NS)}
            assert f["authority"] in residences | properties
    if not manifest["preview"]:
        assert {f["authority"] for f in manifest["files"]} == {manifest["filing_state"]}
        assert sum(f["sellers"] for f in manifest["files"]) == manifest["summary"]["reportable"]
    ids = [
        e.text
        for f in manifest["files"]
        for e in etree.parse(str(out / f["file"])).iter("{urn:oecd:ties:dpistf:v1}DocRefId")
    ]
    assert len(ids) == len(set(ids)), "DocRefIds are unique"
    return manifest


def test_cli_end_to_end_on_sqlite(tmp_path: Path, official_schema: etree.XMLSchema) -> None:
    db = f"sqlite:///{tmp_path}/marketplace.db"
    assert main(["demo-data", "--db", db, "--sellers", "400", "--seed", "11", "--year", "2025"]) == 0
    out = tmp_path / "out"
    code = main(
        [
            "run",
            "--config",
            str(REPO / "dac7.toml"),
            "--source",
            db,
            "--year",
            "2025",
            "--as-of",
            "2026-01-31",
            "--out",
            str(out),
            "--staging",
            str(tmp_path / "staging"),
        ]
    )
    assert code == 0
    manifest = assert_published(out, official_schema)
    s = manifest["summary"]
    assert s["reportable"] == s["decisions"]["reported"]
    assert sum(s["decisions"].values()) == s["sellers_read"]
    assert main(["validate", *[str(out / f["file"]) for f in manifest["files"]], "--xsd-dir", str(OFFICIAL)]) == 0
    # The reports for people (decisions, figures, due diligence) carry no TIN, IBAN or birth date in clear.
    import sqlite3

    with sqlite3.connect(db.removeprefix("sqlite:///")) as con:
        secrets = {r[0] for r in con.execute("select tin from seller_tins")}
        secrets |= {r[0] for r in con.execute("select identifier from seller_financial_accounts")}
        secrets |= {r[0] for r in con.execute("select birth_date from sellers where birth_date is not null")}
    assert {"reports/due_diligence.csv", "reports/due_diligence.html"} <= set(manifest["reports"])
    assert manifest["due_diligence"]["findings"] > 0
    for report in manifest["reports"]:
        if report.endswith((".csv", ".html")):
            text = (out / report).read_text(encoding="utf-8")
            leaked = [s for s in secrets if len(s) > 6 and s in text]
            assert not leaked, f"{report} shows {len(leaked)} personal value(s) in clear"


def _run_on(url: str, tmp_path: Path, name: str) -> dict[str, Any]:
    generate_demo(url, sellers=300, seed=5, year=2025)
    result = run(
        config_path=REPO / "dac7.toml",
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / name,
        staging_root=tmp_path / f"staging-{name}",
        run_id=RUN_ID,
        timestamp=TIMESTAMP,
        ledger_url=f"sqlite:///{tmp_path}/ledger-{name}.sqlite3",  # each a first filing
    )
    return result.manifest


@pytest.mark.pg
@pytest.mark.mariadb
def test_same_bytes_on_sqlite_postgresql_and_mariadb(
    tmp_path: Path, sqlite_url: str, pg_url: str, mariadb_url: str, official_schema: etree.XMLSchema
) -> None:
    manifests = {
        name: _run_on(url, tmp_path, name)
        for name, url in (("sqlite", sqlite_url), ("pg", pg_url), ("mariadb", mariadb_url))
    }
    for name in manifests:
        assert_published(tmp_path / name, official_schema)
    digests = {name: [(f["file"], f["sha256"]) for f in m["files"]] for name, m in manifests.items()}
    assert digests["pg"] == digests["sqlite"]
    assert digests["mariadb"] == digests["sqlite"]
    assert manifests["pg"]["summary"] == manifests["sqlite"]["summary"] == manifests["mariadb"]["summary"]


def test_rerun_with_the_same_run_id_and_timestamp_gives_identical_bytes(tmp_path: Path, sqlite_url: str) -> None:
    a = _run_on(sqlite_url, tmp_path, "a")
    args = {
        "config_path": REPO / "dac7.toml",
        "source_url": sqlite_url,
        "year": 2025,
        "as_of": date(2026, 1, 31),
        "run_id": RUN_ID,
        "timestamp": TIMESTAMP,
    }
    b = run(
        **args,
        out_dir=tmp_path / "b",
        staging_root=tmp_path / "staging-b",
        ledger_url=f"sqlite:///{tmp_path}/ledger-b.sqlite3",
    ).manifest
    assert [(f["file"], f["sha256"]) for f in a["files"]] == [(f["file"], f["sha256"]) for f in b["files"]]
    # Against the ledger that holds the first filing, the same data is nothing to file: once.
    again = run(
        **args,
        out_dir=tmp_path / "c",
        staging_root=tmp_path / "staging-c",
        ledger_url=f"sqlite:///{tmp_path}/ledger-a.sqlite3",
    )
    assert again.nothing_to_file and again.manifest["summary"] == a["summary"]


def test_nexus_routing_files_one_message_to_the_operator_state(tmp_path: Path, sqlite_url: str) -> None:
    generate_demo(sqlite_url, sellers=200, seed=3, year=2025)
    config = tmp_path / "nexus.toml"
    config.write_text((REPO / "dac7.toml").read_text().replace('routing = "jurisdiction"', 'routing = "nexus"'))
    manifest = run(
        config_path=config,
        source_url=sqlite_url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
    ).manifest
    assert [f["authority"] for f in manifest["files"]] == ["LT"]
    assert manifest["files"][0]["sellers"] == manifest["summary"]["reportable"]


def test_cli_run_id_and_timestamp_make_a_run_reproducible_to_the_byte(tmp_path: Path, capsys) -> None:
    """``--run-id`` and ``--timestamp`` fix the ids and the messages' Timestamp: two runs into two
    output directories and two ledgers write the same files byte for byte."""
    db = f"sqlite:///{tmp_path}/marketplace.db"
    assert main(["demo-data", "--db", db, "--sellers", "60", "--seed", "5", "--year", "2025"]) == 0
    files = []
    for n in (1, 2):
        out = tmp_path / f"out{n}"
        args = ["run", "--config", str(REPO / "dac7.toml"), "--source", db, "--year", "2025"]
        args += ["--as-of", "2026-01-31", "--out", str(out), "--staging", str(tmp_path / f"staging{n}")]
        args += ["--ledger", f"sqlite:///{tmp_path}/ledger{n}.sqlite3"]
        args += ["--run-id", "5b3f0d2e-8c1a-4e5f-9a7b-2c4d6e8f0a1b", "--timestamp", "2026-01-15T10:30:00+01:00"]
        assert main(args) == 0
        manifest = json.loads((out / "manifest.json").read_text())
        files.append({f["file"]: (out / f["file"]).read_bytes() for f in manifest["files"]})
    assert files[0] and files[0] == files[1]
    xml = next(iter(files[0].values()))
    # 09:30 UTC, written in CET as the EU profile writes every Timestamp (no offset in the message)
    assert b"Timestamp>2026-01-15T10:30:00<" in xml


@pytest.mark.parametrize("text", ["2026-01-15T09:00:00", "yesterday"])
def test_cli_refuses_a_timestamp_without_offset_or_not_a_time(tmp_path: Path, text: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(
            ["run", "--config", str(REPO / "dac7.toml"), "--year", "2025", "--out", str(tmp_path), "--timestamp", text]
        )
    assert exit_.value.code == 2
    assert "--timestamp" in capsys.readouterr().err
