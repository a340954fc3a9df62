"""A period's whole life in the filing ledger, through the pipeline: the first filing, a
correction and a deletion after a refund, an additional seller, a rerun with nothing to file, a
record the authority rejected and its correction, and a nil report; then the explicit modes, a
run that died between render and publish, a retried render, and two runs at once on PostgreSQL.

Every published file is checked three ways: against the official schema (tests/reference/xsd;
the IT one from ../shared/reference beside the checkout), with the business-rule preflight (the ids
of the earlier steps as known ids, so that a reused id is an 80000 / 50009 finding), and against
the ledger, whose records must be the file's DocSpecs in body order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import Marketplace, write_config
from lxml import etree
from resources import is_outside, outside, outside_reference, require_file, vendored

from reporting.checks.business import EU_DOMESTIC, check_message
from reporting.cli import main
from reporting.ledger import LedgerError, LedgerModeError, RecordInfo, open_ledger
from reporting.pipeline import aggregate, apply_rules, extract, prepare, publish, render, run, summary_table, validate
from reporting.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = {
    "EU": vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0", "DPIXML_v1.0.xsd"),
    "IT": outside("xsd", "it-ade-sogei__client-dac7-jar", "xsd", "telematico", "fornituraDPIT_v1.0.0.xsd"),
}
EU_STATUS_XSD = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0", "DAC7StatusMessageXML_v1.0.xsd")
IT_TABLE = '\n[authorities.IT]\ncodice_fiscale = "12345670017"\n'
#: what the validate stage applies to a domestic EU-edition filing
RULES = EU_DOMESTIC
DPI = "{urn:oecd:ties:dpi:v1}"
STF = "{urn:oecd:ties:dpistf:v1}"
DSM = "urn:oecd:ties:dsm:v1"
AS_OF = date(2026, 1, 31)
PO = None  # the seller_key of the PlatformOperator record


@pytest.fixture(scope="module")
def official() -> dict[str, etree.XMLSchema]:
    """The official schemas; the IT one (outside) when present: a test that files to IT requires it."""
    require_file(*(p for p in (*OFFICIAL.values(), EU_STATUS_XSD) if not is_outside(p)))
    return {code: etree.XMLSchema(etree.parse(str(path))) for code, path in OFFICIAL.items() if path.is_file()}


def market(
    *, refund: bool = False, extra_sale: bool = False, late_seller: bool = False, italian: bool = True
) -> Marketplace:
    """Three LT residents and (``italian``) one IT resident, all reportable; what changes from
    step to step is added last, so that the rows before it keep their keys."""
    m = Marketplace()
    m.seller("LT-GOODS", first_name="Ona", last_name="Kazlauskiene")
    goods = m.sales("LT-GOODS", 30, 60_00)  # 30 sales, EUR 1,800: reportable by the count alone
    m.seller("LT-MORE", tin="38512120000", first_name="Jonas", last_name="Petrauskas")
    m.sales("LT-MORE", 40, 100_00, start="2025-03-03 09:00:00")
    m.seller("LT-STAY", tin="47002020000", first_name="Rasa", last_name="Jankauskiene")
    m.sales("LT-STAY", 2, 1500_00, activity="personal_services", fee_minor=150_00, start="2025-04-01 09:00:00")
    if italian:
        m.seller(
            "IT-1",
            country="IT",
            tin="RSSMRA80A01H501U",
            first_name="Mario",
            last_name="Rossi",
            birth_city="Roma",
            birth_country="IT",
        )
        m.sales("IT-1", 40, 100_00, start="2025-06-02 09:00:00")
    if late_seller:
        m.seller("LT-LATE", tin="36003030000", first_name="Petras", last_name="Vaitkus")
        m.sales("LT-LATE", 35, 80_00, start="2025-09-01 09:00:00")
    if extra_sale:
        m.tx("LT-MORE", "2025-11-20 10:00:00", 250_00)
    if refund:
        # in full, after the first filing: 29 sales, EUR 1,740 (the de minimis excludes it)
        m.refund(goods[0], "2026-01-20 10:00:00", 60_00)
    return m


def doc_specs(path: Path) -> list[tuple[str, str, str | None]]:
    """(DocTypeIndic, DocRefId, CorrDocRefId) of every record of a file, in body order."""
    return [
        (d.findtext(f"{STF}DocTypeIndic"), d.findtext(f"{STF}DocRefId"), d.findtext(f"{STF}CorrDocRefId"))
        for d in etree.parse(str(path)).iter(f"{DPI}DocSpec")
    ]


@dataclass(frozen=True)
class Filed:
    """One published message, with its records as the ledger holds them."""

    authority: str
    message_type_indic: str
    message_ref_id: str
    records: tuple[RecordInfo, ...]

    def by_seller(self) -> dict[str | None, RecordInfo]:
        """Records by seller_key (``PO`` for the PlatformOperator)."""
        return {r.seller_key: r for r in self.records}


@dataclass
class Filings:
    """The pipeline run step after step against one ledger; every published file checked."""

    tmp_path: Path
    ledger_url: str
    schemas: dict[str, etree.XMLSchema]
    config: Path
    steps: int = 0
    message_ref_ids: list[str] = field(default_factory=list)
    #: every DocRefId published so far, resends aside (a resend names its record's own id)
    doc_ref_ids: list[str] = field(default_factory=list)

    def step_dir(self) -> Path:
        self.steps += 1
        path = self.tmp_path / f"step{self.steps}"
        path.mkdir()
        return path

    def run(self, m: Marketplace, *, year: int = 2025, **kw: Any) -> dict[str, list[Filed]]:
        """One run with its own source, output and staging; the published messages by authority."""
        step = self.step_dir()
        timestamp = datetime(2026, 2, self.steps, 6, 0)
        result = run(
            config_path=self.config,
            source_url=m.write(f"sqlite:///{step}/source.db"),
            year=year,
            as_of=AS_OF,
            out_dir=step / "out",
            staging_root=step / "st",
            run_id=str(uuid.uuid4()),
            timestamp=timestamp,
            ledger_url=self.ledger_url,
            **kw,
        )
        filed: dict[str, list[Filed]] = {}
        for f in result.manifest["files"]:
            filed.setdefault(f["authority"], []).append(self.check(step / "out" / f["file"], f, timestamp.date()))
        return filed

    def check(self, path: Path, f: dict[str, Any], today: date) -> Filed:
        """Official schema, preflight (no finding at all), the ledger's records = the file's DocSpecs,
        and no MessageRefId or DocRefId of an earlier step used again."""
        if self.schemas:
            schema = self.schemas[f["profile"]]
            assert schema.validate(etree.parse(str(path))), (f["file"], schema.error_log)
        docs = doc_specs(path)
        resent = {ref for indic, ref, _ in docs if indic == "OECD10"}
        findings = check_message(
            path,
            rules=RULES,
            today=today,
            receiving_country=f["authority"],
            known_doc_ref_ids=set(self.doc_ref_ids) - resent,
            known_message_ref_ids=set(self.message_ref_ids),
        )
        assert findings == [], [x.describe() for x in findings]
        with open_ledger(self.ledger_url) as ledger:
            records = tuple(ledger.records(f["message_ref_id"]))
            assert ledger.message(f["message_ref_id"]).status == "published"
        assert [(r.doc_type_indic, r.doc_ref_id, r.corr_doc_ref_id) for r in records] == docs
        assert all(r.kind == "platform_operator" for r in records if r.doc_type_indic == "OECD10")
        assert f["message_ref_id"] not in self.message_ref_ids
        self.message_ref_ids.append(f["message_ref_id"])
        sent = [ref for _, ref, _ in docs if ref not in resent]
        assert not set(sent) & set(self.doc_ref_ids), "a DocRefId was used again"
        self.doc_ref_ids += sent
        return Filed(f["authority"], f["message_type_indic"], f["message_ref_id"], records)

    def cli_run(self, m: Marketplace, *extra: str) -> list[str]:
        """``dac7 run`` for 2025 with this ledger; the arguments (the caller checks the outcome)."""
        step = self.step_dir()
        return [
            "run",
            "--config",
            str(self.config),
            "--source",
            m.write(f"sqlite:///{step}/source.db"),
            "--year",
            "2025",
            "--as-of",
            AS_OF.isoformat(),
            "--out",
            str(step / "out"),
            "--staging",
            str(step / "st"),
            "--ledger",
            self.ledger_url,
            *extra,
        ]


def kinds(filed: dict[str, list[Filed]]) -> dict[str, list[str]]:
    return {authority: [m.message_type_indic for m in msgs] for authority, msgs in filed.items()}


def doc(record: RecordInfo) -> tuple[str, str | None]:
    return record.doc_type_indic, record.corr_doc_ref_id


def config(tmp_path: Path, extra: str = IT_TABLE) -> Path:
    path = write_config(tmp_path / "dac7.toml")
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def status_message(original: str, rejected: Sequence[str], code: str = "40080") -> etree._Element:
    """A synthetic EU DAC7 status message: ``original`` accepted, the records ``rejected`` named
    in a RecordError (the EU module's way to reject records of an accepted message)."""

    def el(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
        e = etree.SubElement(parent, f"{{{DSM}}}{tag}")
        e.text = text
        return e

    root = etree.Element(f"{{{DSM}}}DAC7StatusMessage", nsmap={"dsm": DSM}, version="1.0")
    spec = el(root, "MessageSpec")
    for tag, text in (
        ("TransmittingCountry", "LT"),
        ("ReceivingCountry", "LT"),
        ("MessageType", "DPI"),
        ("MessageRefId", f"LT2026LT{uuid.uuid4().hex}"),
        ("Timestamp", "2026-02-10T10:00:00"),
    ):
        el(spec, tag, text)
    body = el(root, "DSMBody")
    el(el(body, "OriginalMessage"), "OriginalMessageRefID", original)
    error = el(el(body, "ValidationErrors"), "RecordError")
    el(error, "Code", code)
    el(error, "Details", "The issuing jurisdiction of the TIN is missing (synthetic test document)")
    for doc_ref_id in rejected:
        el(error, "DocRefIDInError", doc_ref_id)
    el(el(error, "FieldsInError"), "FieldPath", "DPIBody/ReportableSeller/Identity")
    result = el(body, "ValidationResult")
    el(result, "Status", "Accepted")
    el(result, "ValidatedBy", "DAC7 validation module 1.1.0 (synthetic test document)")
    return root


def ledger_table(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, str, str, str]]:
    """``dac7 ledger list``: MessageRefId -> (authority, year, MessageTypeIndic, status)."""
    capsys.readouterr()
    assert main(["ledger", "list", "--ledger", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["created", "(UTC)", "auth"]
    rows = {}
    for line in lines[1:]:
        _day, _time, authority, year, _env, kind, ref, _sellers, status = line.split(maxsplit=8)
        rows[ref] = (authority, year, kind, status)
    return rows


# ------------------------------------------------------------------------------------ the lifecycle


def test_a_period_from_first_filing_to_nil_report(
    tmp_path: Path, official: dict[str, etree.XMLSchema], capsys: pytest.CaptureFixture[str]
) -> None:
    filings = Filings(tmp_path, f"sqlite:///{tmp_path}/ledger.sqlite3", official, config(tmp_path, extra=""))

    # 1. The first filing, in LT (the filing state) with every seller, the Italian resident too:
    # one DPI401, every record new (test data: OECD11).
    first = filings.run(market())
    assert kinds(first) == {"LT": ["DPI401"]}
    assert {doc(r) for msgs in first.values() for r in msgs[0].records} == {("OECD11", None)}
    lt1 = first["LT"][0].by_seller()
    assert set(lt1) == {PO, "LT-GOODS", "LT-MORE", "LT-STAY", "IT-1"}

    # 2. A refund drops LT-GOODS under the de minimis, LT-MORE has one sale more: one DPI402 to
    # LT deletes the first and corrects the second, the PlatformOperator resent.
    second = filings.run(market(refund=True, extra_sale=True))
    assert kinds(second) == {"LT": ["DPI402"]}
    lt2 = second["LT"][0].by_seller()
    assert set(lt2) == {PO, "LT-GOODS", "LT-MORE"}
    assert (lt2[PO].doc_type_indic, lt2[PO].doc_ref_id, lt2[PO].corr_doc_ref_id) == ("OECD10", lt1[PO].doc_ref_id, None)
    assert doc(lt2["LT-GOODS"]) == ("OECD13", lt1["LT-GOODS"].doc_ref_id)
    assert doc(lt2["LT-MORE"]) == ("OECD12", lt1["LT-MORE"].doc_ref_id)

    # 3. A late seller: an additional DPI401, the seller new, the PlatformOperator resent.
    third = filings.run(market(refund=True, extra_sale=True, late_seller=True))
    assert kinds(third) == {"LT": ["DPI401"]}
    lt3 = third["LT"][0].by_seller()
    assert set(lt3) == {PO, "LT-LATE"}
    assert (lt3[PO].doc_type_indic, lt3[PO].doc_ref_id) == ("OECD10", lt1[PO].doc_ref_id)
    assert doc(lt3["LT-LATE"]) == ("OECD11", None)

    # 4. Nothing changed: nothing to file, exit 0.
    capsys.readouterr()
    assert main(filings.cli_run(market(refund=True, extra_sale=True, late_seller=True))) == 0
    assert "nothing to file (the ledger holds this period as filed)" in capsys.readouterr().out

    # 5. LT accepts the step-3 message but rejects the late seller's record: the next run sends
    # it again as a correction of the rejected version.
    rejected = lt3["LT-LATE"].doc_ref_id
    status = status_message(third["LT"][0].message_ref_id, [rejected])
    assert etree.XMLSchema(etree.parse(str(EU_STATUS_XSD))).validate(status)
    path = tmp_path / "status.xml"
    path.write_bytes(etree.tostring(status, xml_declaration=True, encoding="UTF-8"))
    capsys.readouterr()
    assert main(["status-import", str(path), "--ledger", filings.ledger_url]) == 0
    said = capsys.readouterr().out
    assert f"partially rejected (eu-dac7-status), message accepted; 1 record(s) rejected: {rejected}" in said
    listed = ledger_table(filings.ledger_url, capsys)[third["LT"][0].message_ref_id]
    assert listed == ("LT", "2025", "DPI401", "accepted (1 record(s) rejected), 1 error(s)")
    fifth = filings.run(market(refund=True, extra_sale=True, late_seller=True))
    assert kinds(fifth) == {"LT": ["DPI402"]}
    lt5 = fifth["LT"][0].by_seller()
    assert set(lt5) == {PO, "LT-LATE"}
    assert (lt5[PO].doc_type_indic, lt5[PO].doc_ref_id) == ("OECD10", lt1[PO].doc_ref_id)
    assert doc(lt5["LT-LATE"]) == ("OECD12", rejected)
    assert filings.run(market(refund=True, extra_sale=True, late_seller=True)) == {}  # corrected once

    # 6. A period without sellers: the EU generic profile files nothing (a DPI403 must name an
    # assumed operator in the EU exchange, rule 20030); see the Italian nil report below.
    assert filings.run(market(), year=2024) == {}

    # Every message of every step, with its status, in `dac7 ledger list`.
    table = ledger_table(filings.ledger_url, capsys)
    assert set(table) == set(filings.message_ref_ids)
    assert table[first["LT"][0].message_ref_id] == ("LT", "2025", "DPI401", "published")
    assert table[second["LT"][0].message_ref_id] == ("LT", "2025", "DPI402", "published")
    # the rejected record is superseded by its correction now; the error stays on record
    assert table[third["LT"][0].message_ref_id] == ("LT", "2025", "DPI401", "accepted, 1 error(s)")
    assert table[fifth["LT"][0].message_ref_id] == ("LT", "2025", "DPI402", "published")
    assert len(set(filings.doc_ref_ids)) == len(filings.doc_ref_ids) == 5 + 2 + 1 + 1  # steps 1, 2, 3, 5


@outside_reference
def test_an_italian_filing_of_a_period_without_sellers_is_a_nil_report(
    tmp_path: Path, official: dict[str, etree.XMLSchema]
) -> None:
    """The IT profile expects a nil report (DPI403, the PlatformOperator alone) for a period
    without reportable sellers, where the EU generic profile files nothing."""
    require_file(OFFICIAL["IT"])
    cfg = write_config(tmp_path / "dac7.toml", filing_state="IT", nexus="RPONEX4", extra=IT_TABLE)
    filings = Filings(tmp_path, f"sqlite:///{tmp_path}/ledger.sqlite3", official, cfg)
    first = filings.run(market())
    assert kinds(first) == {"IT": ["DPI401"]} and len(first["IT"][0].records) == 5
    nil = filings.run(market(), year=2024)
    assert kinds(nil) == {"IT": ["DPI403"]}
    assert [(r.kind, *doc(r)) for r in nil["IT"][0].records] == [("platform_operator", "OECD11", None)]


# ---------------------------------------------------------------------------------- explicit modes


def test_explicit_modes_refuse_with_a_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    filings = Filings(tmp_path, f"sqlite:///{tmp_path}/ledger.sqlite3", {}, config(tmp_path, extra=""))
    m = market(italian=False)

    with pytest.raises(
        LedgerModeError, match=r"^mode correction: nothing was filed for LT 2025 \(test\) yet; use new$"
    ):
        filings.run(m, mode="correction")
    with pytest.raises(LedgerModeError, match=r"^mode nil: 3 reportable seller\(s\) for LT 2025 \(test\); .* use new$"):
        filings.run(m, mode="nil")
    assert main(filings.cli_run(m, "--mode", "correction")) == 1
    assert capsys.readouterr().err.strip() == "dac7: mode correction: nothing was filed for LT 2025 (test) yet; use new"
    with open_ledger(filings.ledger_url) as ledger:
        assert ledger.messages() == []  # a refusal records nothing

    [initial] = filings.run(m, mode="new")["LT"]
    with pytest.raises(
        LedgerModeError,
        match=rf"^mode new: LT 2025 \(test\) already has a live filing \(message {initial.message_ref_id}\)",
    ):
        filings.run(m, mode="new")
    with pytest.raises(
        LedgerModeError, match=r"^mode correction: nothing changed in LT 2025 \(test\) since the live filing"
    ):
        filings.run(m, mode="correction")
    # what a mode can do, it does: a deletion of one named seller, the PlatformOperator resent
    [deletion] = filings.run(m, mode="deletion", sellers=["LT-GOODS"])["LT"]
    assert deletion.message_type_indic == "DPI402"
    assert [(r.seller_key, *doc(r)) for r in deletion.records] == [
        (PO, "OECD10", None),
        ("LT-GOODS", "OECD13", initial.by_seller()["LT-GOODS"].doc_ref_id),
    ]


def test_a_deletion_of_sellers_no_authority_holds_is_refused(tmp_path: Path) -> None:
    """``mode deletion`` naming sellers that were never filed (an empty ledger, a mistyped id)
    must refuse with the planner's sentence, not end as "nothing to file"."""
    filings = Filings(tmp_path, f"sqlite:///{tmp_path}/ledger.sqlite3", {}, config(tmp_path, extra=""))
    m = market(italian=False)
    with pytest.raises(LedgerModeError, match=r"^mode deletion: nothing was filed for LT 2025 \(test\) yet"):
        filings.run(m, mode="deletion", sellers=["LT-GOODS"])
    filings.run(m)
    with pytest.raises(LedgerModeError, match=r"^mode deletion: 1 seller\(s\) have no live record in LT 2025 \(test\)"):
        filings.run(m, mode="deletion", sellers=["LT-TYPO"])


# ------------------------------------------------------------------------------------------ crashes


def stages_before_render(tmp_path: Path, name: str, cfg: Path, ledger_url: str, source_url: str) -> str:
    """A run driven stage by stage up to the rules (what an Airflow run does, task by task)."""
    run_dir = prepare(
        config_path=cfg,
        year=2025,
        as_of=AS_OF,
        out_dir=tmp_path / f"out-{name}",
        staging_root=tmp_path / "st",
        run_id=str(uuid.uuid4()),
        timestamp=datetime(2026, 2, 1, 6, 0),
        source_url=source_url,
        ledger_url=ledger_url,
    )
    extract(run_dir, source_url)
    aggregate(run_dir)
    apply_rules(run_dir)
    return run_dir


def test_a_run_that_died_after_render_is_discarded_by_the_next_run(
    tmp_path: Path, official: dict[str, etree.XMLSchema], capsys: pytest.CaptureFixture[str]
) -> None:
    ledger_url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    source = market(italian=False).write(f"sqlite:///{tmp_path}/source.db")
    dead = stages_before_render(tmp_path, "dead", config(tmp_path, extra=""), ledger_url, source)
    dead_id = load_settings(dead).run_id
    [rendered] = render(dead)["messages"]  # ... and the run dies here
    with open_ledger(ledger_url) as ledger:
        assert ledger.message(rendered["message_ref_id"]).status == "rendered"

    filings = Filings(tmp_path, ledger_url, official, config(tmp_path, extra=""))
    step = filings.steps + 1
    [filed] = filings.run(market(italian=False))["LT"]
    assert filed.message_type_indic == "DPI401" and filed.message_ref_id != rendered["message_ref_id"]
    manifest = json.loads((tmp_path / f"step{step}" / "out" / "manifest.json").read_text())
    discarded = {"authority": "LT", "message_ref_id": rendered["message_ref_id"], "run_id": dead_id}
    assert manifest["discarded"] == [discarded]
    assert f"discarded {rendered['message_ref_id']} (LT) of run {dead_id}: rendered, never published" in (
        summary_table(manifest)
    )
    table = ledger_table(ledger_url, capsys)
    assert table[rendered["message_ref_id"]] == ("LT", "2025", "DPI401", "discarded")
    assert table[filed.message_ref_id] == ("LT", "2025", "DPI401", "published")
    # The dead run's ids stay used, and its files can never be published now.
    with open_ledger(ledger_url) as ledger:
        dead_ids = {r.doc_ref_id for r in ledger.records(rendered["message_ref_id"])}
    assert not dead_ids & {r.doc_ref_id for r in filed.records}
    validate(dead)
    with pytest.raises(LedgerError, match=rf"message {rendered['message_ref_id']} was discarded"):
        publish(dead)
    assert not (tmp_path / "out-dead" / rendered["file"]).exists()


@outside_reference
def test_a_retried_render_writes_the_same_bytes_and_publishes_once(
    tmp_path: Path, official: dict[str, etree.XMLSchema]
) -> None:
    require_file(OFFICIAL["IT"])
    ledger_url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    source = market().write(f"sqlite:///{tmp_path}/source.db")
    # the operator files in Italy: the telematic envelope
    cfg = write_config(tmp_path / "dac7.toml", filing_state="IT", nexus="RPONEX4", extra=IT_TABLE)
    run_dir = stages_before_render(tmp_path, "retried", cfg, ledger_url, source)
    first = render(run_dir)
    written = {m["file"]: (Path(run_dir) / "render" / m["file"]).read_bytes() for m in first["messages"]}
    again = render(run_dir)  # a retry of the task: the same messages, ids and bytes
    assert again == first
    assert {m["file"]: (Path(run_dir) / "render" / m["file"]).read_bytes() for m in again["messages"]} == written
    with open_ledger(ledger_url) as ledger:
        assert [(m.message_ref_id, m.status) for m in ledger.messages()] == [
            (m["message_ref_id"], "rendered") for m in first["messages"]
        ]
    validate(run_dir)
    manifest = publish(run_dir)
    assert publish(run_dir)["files"] == manifest["files"]  # a retried publish changes nothing
    assert sorted(f["message_ref_id"] for f in manifest["files"]) == sorted(
        m["message_ref_id"] for m in first["messages"]
    )
    out = tmp_path / "out-retried"
    assert sorted(str(p.relative_to(out)) for p in out.glob("*/*.xml")) == sorted(written)
    for f in manifest["files"]:
        assert (out / f["file"]).read_bytes() == written[f["file"]]
        assert official[f["profile"]].validate(etree.parse(str(out / f["file"])))
    with open_ledger(ledger_url) as ledger:
        assert [(m.message_ref_id, m.status) for m in ledger.messages()] == [
            (m["message_ref_id"], "published") for m in first["messages"]
        ]
    rerun = run(
        config_path=cfg,
        source_url=source,
        year=2025,
        as_of=AS_OF,
        out_dir=tmp_path / "rerun",
        staging_root=tmp_path / "st",
        timestamp=datetime(2026, 2, 2, 6, 0),
        ledger_url=ledger_url,
    )
    assert rerun.nothing_to_file  # filed once


# -------------------------------------------------------------------------------------- concurrency


def dac7_run(tmp_path: Path, name: str, cfg: Path, source_url: str, ledger_url: str) -> subprocess.Popen[str]:
    """``dac7 run`` in a process of its own."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reporting.cli",
            "run",
            "--config",
            str(cfg),
            "--source",
            source_url,
            "--year",
            "2025",
            "--as-of",
            AS_OF.isoformat(),
            "--out",
            str(tmp_path / f"out-{name}"),
            "--staging",
            str(tmp_path / "st"),
            "--ledger",
            ledger_url,
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def outcome(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """What a ``dac7 run`` process did: filed, nothing (to file), locked (out by the other run's
    lock) or discarded (its rendered message was discarded by the other run before it could
    publish it); and its stderr."""
    out, err = proc.communicate(timeout=300)
    if proc.returncode == 0 and "XML files under" in out:
        return "filed", err
    if proc.returncode == 0 and "nothing to file" in out:
        return "nothing", err
    if proc.returncode == 1 and "LT 2025 (test) is being filed by another run" in err:
        return "locked", err
    if proc.returncode == 1 and "was discarded (a later run planned the period again)" in err:
        return "discarded", err
    pytest.fail(f"dac7 run exited {proc.returncode}:\n{out}\n{err}")


def published_initials(ledger_url: str) -> list[str]:
    with open_ledger(ledger_url) as ledger:
        return [
            m.message_ref_id
            for m in ledger.messages(year=2025, authority="LT", environment="test")
            if m.message_type_indic == "DPI401" and m.status in ("published", "accepted")
        ]


@pytest.mark.pg
def test_a_run_fails_fast_while_another_holds_the_period(tmp_path: Path, pg_url: str) -> None:
    cfg = config(tmp_path, extra="")
    source = market(italian=False).write(f"sqlite:///{tmp_path}/source.db")
    with open_ledger(pg_url) as ledger, ledger.lock("test", "LT", 2025, holder="run-x"):
        # The second run ends by itself while the lock is held: it never waits for it.
        result, err = outcome(dac7_run(tmp_path, "second", cfg, source, pg_url))
        assert result == "locked"
        assert "LT 2025 (test) is being filed by another run (held by run-x since" in err
        assert "dac7 ledger unlock" not in err  # a PostgreSQL lock ends with its session
        assert ledger.messages() == []  # nothing rendered, nothing recorded
    result, err = outcome(dac7_run(tmp_path, "after", cfg, source, pg_url))
    assert result == "filed", err
    assert len(published_initials(pg_url)) == 1


@pytest.mark.pg
def test_two_runs_of_the_same_period_at_once_file_it_once(tmp_path: Path, pg_url: str) -> None:
    cfg = config(tmp_path, extra="")
    source = market(italian=False).write(f"sqlite:///{tmp_path}/source.db")
    with open_ledger(pg_url):
        pass  # migrated once, before the runs start
    procs = [dac7_run(tmp_path, name, cfg, source, pg_url) for name in ("a", "b")]
    outcomes = sorted(outcome(p)[0] for p in procs)
    # One files; the other is locked out, finds it filed, or (it rendered while the first one
    # was between render and publish) had its message discarded and cannot publish it.
    assert outcomes in (["filed", "locked"], ["filed", "nothing"], ["discarded", "filed"]), outcomes
    assert len(published_initials(pg_url)) == 1
