"""The filing ledger on real databases (SQLite and PostgreSQL): migrations, the id constraints,
environment isolation, the publish transaction, pending/discard, the filing lock across real
processes, status imports (EU DAC7 status message, BZSt DIP protocol), the hardened status parser,
and the ``dac7 ledger`` / ``dac7 status-import`` commands.

The status documents are written here, small and synthetic, and validated against the reference
schemas in ``tests/reference/xsd``. The DIP reference files hold the
``processStatusType`` (OK / PARTIALLY_REJECTED / ERROR) but no element around it: the response
schema below declares ``dipResponse/dipProtocol`` as the third-party client the DE profile follows
does, over the reference dip-types.xsd.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ledger_filing import Filer, current, item
from lxml import etree
from resources import require_file, vendored

from reporting.cli import main
from reporting.ledger import (
    PO_KEY,
    Ledger,
    LedgerError,
    LedgerLockedError,
    PlannedMessage,
    StatusFormatError,
    UnknownMessageError,
    default_ledger_url,
    open_ledger,
    plan_filing,
)
from reporting.ledger import db as ledger_db
from reporting.ledger import schema as t
from reporting.ledger.model import SELLER, opo_key
from reporting.ledger.status import import_status

REPO = Path(__file__).resolve().parents[2]
EU_STATUS_XSD = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0", "DAC7StatusMessageXML_v1.0.xsd")
DIP_TYPES_XSD = vendored("xsd", "de-bzst-dip__xdev-client", "dip-types.xsd")
DSM = "urn:oecd:ties:dsm:v1"
DIP_V1 = "http://itzbund.de/ozg/bzst/post/dip/v1/"
DIP_V2 = "http://itzbund.de/ozg/bzst/post/dip/v2/"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return default_ledger_url(tmp_path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(ledger_url) as led:
        yield led


# ---------------------------------------------------------------------------------------- schema


def test_migrations_build_exactly_the_model_and_run_again_harmlessly(ledger_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with open_ledger(ledger_url):
        pass
    with open_ledger(ledger_url) as led, led.engine.connect() as conn:  # the second open is a no-op
        context = MigrationContext.configure(conn, opts={"version_table": t.VERSION_TABLE})
        assert context.get_current_revision() == "0009_due_diligence_desk"
        assert compare_metadata(context, t.metadata) == []
        names = set(sa.inspect(conn).get_table_names())
    assert {"ledger_messages", "ledger_records", "ledger_errors", "ledger_status_imports", "ledger_locks"} <= names
    assert {"ledger_statements", "ledger_statement_events"} <= names
    assert {"ledger_verification_calls", "ledger_verification_cache"} <= names
    assert {"ledger_due_diligence", "ledger_due_diligence_events", "ledger_due_diligence_runs"} <= names
    assert t.VERSION_TABLE in names and "alembic_version" not in names  # beside Airflow's, never in its way


def test_the_default_sqlite_ledger_is_created_for_its_owner_only(tmp_path: Path) -> None:
    url = default_ledger_url(tmp_path / "new")
    with pytest.raises(LedgerError, match="there is no ledger at"):
        open_ledger(url, create=False)
    with open_ledger(url):
        pass
    path = tmp_path / "new" / "dac7-ledger.sqlite3"
    assert url == f"sqlite:///{path}"
    assert path.stat().st_mode & 0o777 == 0o600


OPEN_WHEN_TOLD = """
import sys, time
from pathlib import Path
from reporting.ledger import open_ledger
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
with open_ledger(sys.argv[1]):
    pass
print("opened")
"""


def test_processes_and_threads_creating_a_new_ledger_at_once_all_open_it(ledger_url: str, tmp_path: Path) -> None:
    """Four processes open a ledger that does not exist yet at the same moment (the first run
    of tasks that start together), then four threads of one process open another: each finds
    it migrated, none fails. On SQLite, before the migrations took the write lock first, most
    of the processes failed with "table ledger_messages already exists" and the threads could
    crash the interpreter."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_WHEN_TOLD, ledger_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    time.sleep(1.5)  # each has imported the ledger's code and waits
    go.touch()
    outcomes = [p.communicate(timeout=120) for p in procs]
    assert [(p.returncode, out.strip()) for p, (out, _err) in zip(procs, outcomes, strict=True)] == [
        (0, "opened")
    ] * 4, [err[-300:] for _out, err in outcomes]

    import threading

    url = default_ledger_url(tmp_path / "threads") if ledger_url.startswith("sqlite") else ledger_url
    start = threading.Barrier(4)
    failures: list[str] = []

    def open_it() -> None:
        start.wait()
        try:
            with open_ledger(url):
                pass
        except Exception as exc:
            failures.append(type(exc).__name__)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    with open_ledger(url) as led, led.engine.connect() as conn:
        assert conn.execute(sa.text(f"select version_num from {t.VERSION_TABLE}")).scalars().all() == [
            "0009_due_diligence_desk"
        ]


@pytest.mark.parametrize("revision", ["0001", "0003", "0008_due_diligence_run_settings"])
def test_a_sqlite_ledger_of_an_older_revision_is_brought_to_head_with_its_filings(
    tmp_path: Path, revision: str
) -> None:
    """A ledger that a former version wrote (its filings taken down to ``revision``) is migrated
    when opened, in the one transaction under the write lock: the batch migrations (the table
    copies of ``render_as_batch``) run with the foreign keys on, the filings stay live, and the
    schema is the model's."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext

    url = default_ledger_url(tmp_path)
    with open_ledger(url) as led:
        f = Filer(led)
        f.file(current(sellers={"S1": 1, "S2": 1}))
        f.file(current(po=2, sellers={"S1": 2, "S3": 1}))
        live = f.live()
    # the downgrades copy ledger_messages, which its records reference: the keys off for them
    down = sa.create_engine(url)
    sa.event.listen(
        down, "connect", lambda dbapi_connection, _record: dbapi_connection.execute("PRAGMA foreign_keys=OFF")
    )
    cfg = Config()
    cfg.set_main_option("script_location", ledger_db.SCRIPT_LOCATION)
    try:
        with down.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
            assert conn.execute(sa.text(f"select version_num from {t.VERSION_TABLE}")).scalars().all() == [revision]
    finally:
        down.dispose()

    with open_ledger(url) as led, led.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": t.VERSION_TABLE})
        assert context.get_current_revision() == "0009_due_diligence_desk"
        assert compare_metadata(context, t.metadata) == []
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        assert Filer(led).live() == live


HALF_WAY = """
import sqlalchemy as sa
from alembic import op

revision = "0010_half_way"
down_revision = "0009_due_diligence_desk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("ledger_half_way", sa.Column("id", sa.Integer, primary_key=True))
    with op.batch_alter_table("ledger_messages") as batch:
        batch.add_column(sa.Column("half_way", sa.Integer, nullable=True))
    raise RuntimeError("a migration failing half-way")
"""


def test_a_migration_failing_half_way_leaves_the_ledger_as_it_was(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration that fails after it made a table and a column (a full disk, a killed process)
    leaves the ledger at its old revision without them, and a new ledger without any table: the
    migrations run in one transaction. On SQLite, before the write lock was taken first, pysqlite
    ran a CREATE or ALTER outside any transaction until a first INSERT began one: the table and
    the column stayed beside revision 0009, and a new ledger kept the six tables of revision
    0001 with an empty revision table (its next opening failed, "table already exists")."""
    import shutil

    with open_ledger(ledger_url):  # at 0009, with the project's own migrations
        pass
    scripts = tmp_path / "migrations"
    shutil.copytree(REPO / "reporting" / "ledger" / "migrations", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0010_half_way.py").write_text(HALF_WAY)
    monkeypatch.setattr(ledger_db, "SCRIPT_LOCATION", str(scripts))
    monkeypatch.setattr(ledger_db, "_head_revision", functools.cache(ledger_db._head_revision.__wrapped__))

    urls = [ledger_url] + ([default_ledger_url(tmp_path / "new")] if ledger_url.startswith("sqlite") else [])
    for url in urls:
        with pytest.raises(RuntimeError, match="failing half-way"):
            open_ledger(url)
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"select version_num from {t.VERSION_TABLE}")).scalars().all() == [
                "0009_due_diligence_desk"
            ]
            inspector = sa.inspect(conn)
            assert "ledger_half_way" not in inspector.get_table_names()
            assert "half_way" not in {c["name"] for c in inspector.get_columns("ledger_messages")}
    finally:
        engine.dispose()
    if len(urls) > 1:
        new = sa.create_engine(urls[1])
        try:
            with new.connect() as conn:
                assert sa.inspect(conn).get_table_names() == []
        finally:
            new.dispose()


@pytest.mark.mariadb
def test_other_databases_are_refused(mariadb_url: str) -> None:
    with pytest.raises(LedgerError, match="SQLite or PostgreSQL"):
        open_ledger(mariadb_url)


# ------------------------------------------------------------------------------------- lifecycle


def test_a_filing_history_keeps_one_live_version_per_record(ledger: Ledger) -> None:
    f = Filer(ledger)
    [first] = f.file(current(sellers={"S1": 1, "S2": 1}))
    live = f.live()
    assert set(live) == {PO_KEY, (SELLER, "S1"), (SELLER, "S2")}
    assert live[(SELLER, "S1")].content == {"seller": "S1", "name": "Ona Example", "v": 1}
    assert live[(SELLER, "S1")].message_ref_id == first

    correction, additional = f.file(current(po=2, sellers={"S1": 2, "S3": 1}))
    after = f.live()
    assert set(after) == {PO_KEY, (SELLER, "S1"), (SELLER, "S3")}  # S2 deleted
    assert after[(SELLER, "S1")].message_ref_id == correction
    assert after[(SELLER, "S3")].message_ref_id == additional
    states = {(r.kind, r.seller_key, r.doc_type): (r.status, r.superseded_by) for r in ledger.records(first)}
    assert states[("seller", "S1", "new")] == ("superseded", after[(SELLER, "S1")].doc_ref_id)
    assert states[("seller", "S2", "new")][0] == "deleted"
    assert states[("platform_operator", None, "new")][0] == "superseded"
    resent = [r for r in ledger.records(additional) if r.doc_type == "resend"]
    assert [r.doc_ref_id for r in resent] == [after[PO_KEY].doc_ref_id]  # the corrected operator's new id

    listed = ledger.messages(year=2025, authority="DE", environment="test")
    assert [(m.message_type_indic, m.status, m.sellers) for m in listed] == [
        ("DPI401", "published", 2),
        ("DPI402", "published", 2),
        ("DPI401", "published", 1),
    ]
    assert listed[0].triggered_by == "tester" and listed[0].transfer_id == f"T-{first}"
    assert f.plan(current(po=2, sellers={"S1": 2, "S3": 1})) == []


def test_a_message_of_more_records_than_a_batch_is_recorded_whole_and_in_order(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_db, "RECORD_BATCH", 2)  # 1 operator + 4 sellers: batches of 2, 2 and 1
    f = Filer(ledger)
    [ref] = f.file(current(sellers={"S1": 1, "S2": 1, "S3": 1, "S4": 1}))
    records = ledger.records(ref)
    assert [(r.kind, r.seller_key) for r in records] == [
        ("platform_operator", None),
        ("seller", "S1"),
        ("seller", "S2"),
        ("seller", "S3"),
        ("seller", "S4"),
    ]
    assert set(f.live()) == {PO_KEY, *((SELLER, s) for s in ("S1", "S2", "S3", "S4"))}
    # a batch the database refuses (the last seller's DocRefId is the one before's) leaves nothing
    # of the message behind: every batch is in the one transaction
    g = Filer(ledger, authority="FR")
    [planned] = g.plan(current(sellers={"S1": 1, "S2": 1, "S3": 1, "S4": 1}))
    twice = replace(planned.records[-1], doc_ref_id=planned.records[-2].doc_ref_id)
    with pytest.raises(LedgerError, match="breaks a ledger constraint"):
        g.record([replace(planned, records=(*planned.records[:-1], twice))])
    assert ledger.messages(year=2025, authority="FR", environment="test") == []
    assert g.live() == {}


def test_assumed_operators_added_and_removed_replay_to_the_live_state(ledger: Ledger) -> None:
    """Issue 18 on a real ledger: a first filing; an assumed operator added with its sellers (a
    DPI401: its record OECD1, its sellers OECD1, the PlatformOperator resent); another added and
    the first removed with its seller (a DPI402 deleting both, then a DPI401 adding the other). The
    live state read back from the database after each step is the one the plan says."""
    f = Filer(ledger)
    f.file(current(sellers={"S1": 1}))
    first_po = f.live()[PO_KEY].doc_ref_id

    def with_others(sellers: dict[str, int], *keys: str) -> dict:
        cur = current(sellers=sellers)
        for key in keys:
            cur[opo_key(key)] = item({"assumed": key, "name": f"Market {key}"})
        return cur

    [added] = f.plan(with_others({"S1": 1, "A1": 1}, "FR-9"))
    assert [(r.kind, r.seller_key, r.doc_type) for r in added.records] == [
        ("platform_operator", None, "resend"),
        ("other_platform_operators", "FR-9", "new"),
        ("seller", "A1", "new"),
    ]
    assert (added.message_type_indic, added.platform_operator.doc_ref_id) == ("DPI401", first_po)
    [ref] = f.record([added])
    ledger.mark_published(ref)
    live = f.live()
    assert set(live) == {PO_KEY, opo_key("FR-9"), (SELLER, "S1"), (SELLER, "A1")}
    assert live[opo_key("FR-9")].content == {"assumed": "FR-9", "name": "Market FR-9"}
    assert live[opo_key("FR-9")].message_ref_id == ref

    removal, addition = f.plan(with_others({"S1": 1, "B1": 1}, "IT-2"))
    assert [(r.kind, r.seller_key, r.doc_type, r.corr_doc_ref_id) for r in removal.records] == [
        ("platform_operator", None, "resend", None),
        ("other_platform_operators", "FR-9", "deletion", live[opo_key("FR-9")].doc_ref_id),
        ("seller", "A1", "deletion", live[(SELLER, "A1")].doc_ref_id),
    ]
    assert removal.message_type_indic == "DPI402" and addition.message_type_indic == "DPI401"
    refs = f.record([removal, addition])
    for r in refs:
        ledger.mark_published(r)
    after = f.live()
    assert set(after) == {PO_KEY, opo_key("IT-2"), (SELLER, "S1"), (SELLER, "B1")}
    states = {(r.kind, r.seller_key, r.doc_type): r.status for r in ledger.records(ref)}
    assert states[("other_platform_operators", "FR-9", "new")] == "deleted"
    assert f.plan(with_others({"S1": 1, "B1": 1}, "IT-2")) == []


def test_an_id_the_ledger_knows_is_found_past_the_first_batch_of_ids(ledger: Ledger) -> None:
    """Ledger.problems and record_message ask the ledger for the plan's ids 500 at a time as the
    records come: an id it knows, named by the last of 1,201 records (the third batch), is found
    by both, and the others are not."""
    assert ledger_db._BATCH == 500
    f = Filer(ledger)
    f.file(current(sellers={"S0001": 1}))
    taken = f.live()[(SELLER, "S0001")].doc_ref_id
    fr = Filer(ledger, environment="prod", authority="FR")
    [msg] = plan_filing(
        current(sellers={f"S{n:04d}": 1 for n in range(1, 1_201)}),
        {},
        new_id=fr.new_id,
        environment="prod",
        authority="FR",
        year=2025,
        profile_expects_nil=False,
    )
    assert len(msg.records) == 1_201
    period = {"environment": "prod", "authority": "FR", "year": 2025}
    assert ledger.problems([msg], **period) == []
    reused = replace(msg, records=(*msg.records[:-1], replace(msg.records[-1], doc_ref_id=taken)))
    problems = ledger.problems([reused], **period)
    assert [code for code, _ in problems] == ["80000"]
    assert taken in problems[0][1] and "S1200" in problems[0][1]
    with pytest.raises(LedgerError, match=rf"DocRefId\(s\) {taken} are already in the ledger \(EU rule 80000\)"):
        fr.record([reused])
    assert fr.record([msg])  # the same message with its own ids is recorded


def test_ids_are_never_reused_across_reruns_environments_and_authorities(ledger: Ledger) -> None:
    f = Filer(ledger)
    [ref] = f.file(current(sellers={"S1": 1}))
    [msg] = Filer(ledger, environment="prod", authority="FR").plan(current(sellers={"S1": 1}))
    reused = PlannedMessage(
        msg.message_type_indic,
        tuple(r if r.kind != SELLER else _with_id(r, f.live()[(SELLER, "S1")].doc_ref_id) for r in msg.records),
        "prod",
        "FR",
        2025,
    )
    with pytest.raises(LedgerError, match=r"already in the ledger \(EU rule 80000\)"):
        Filer(ledger, environment="prod", authority="FR").record([reused])
    with pytest.raises(LedgerError, match=r"MessageRefId .* already in the ledger \(EU rule 50009\)"):
        ledger.record_message(
            msg,
            message_ref_id=ref,
            authority="FR",
            operator="x",
            year=2025,
            environment="prod",
            file_name="f",
            sha256="0" * 64,
            run_id="r",
        )
    assert ledger.messages(environment="prod") == []  # nothing half-recorded


def test_a_resend_of_an_operator_never_filed_is_refused(ledger: Ledger) -> None:
    f = Filer(ledger)
    f.file(current(sellers={"S1": 1}))
    [additional] = f.plan(current(sellers={"S1": 1, "S2": 1}))
    po = additional.records[0]
    assert po.doc_type == "resend"
    forged = PlannedMessage("DPI401", (_with_id(po, "DE2025-never-filed"), *additional.records[1:]), "test", "DE", 2025)
    with pytest.raises(LedgerError, match=r"resends DE2025-never-filed, which is no PlatformOperator .*80013"):
        f.record([forged])


def _with_id(record: Any, doc_ref_id: str) -> Any:
    from dataclasses import replace

    return replace(record, doc_ref_id=doc_ref_id)


def test_the_database_itself_refuses_a_reused_doc_ref_id_but_allows_resends(ledger: Ledger) -> None:
    f = Filer(ledger)
    [ref] = f.file(current(sellers={"S1": 1}))
    live = f.live()
    with ledger.engine.begin() as conn:
        message_id = conn.execute(sa.select(t.messages.c.id).where(t.messages.c.message_ref_id == ref)).scalar_one()
    row = {
        "message_id": message_id,
        "kind": "platform_operator",
        "seller_key": None,
        "doc_type_indic": "OECD10",
        "corr_doc_ref_id": None,
        "content_hash": "h",
        "content": "{}",
        "status": "sent",
    }
    new_message = _raw_message(ledger, "RAW-1")
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:  # partial unique index
        conn.execute(
            sa.insert(t.records).values(
                **row | {"message_id": new_message, "position": 0, "doc_type": "new"},
                doc_ref_id=live[PO_KEY].doc_ref_id,
            )
        )
    with ledger.engine.begin() as conn:  # a resend repeats the id: allowed, once per message
        conn.execute(
            sa.insert(t.records).values(
                **row | {"message_id": new_message, "position": 0, "doc_type": "resend"},
                doc_ref_id=live[PO_KEY].doc_ref_id,
            )
        )
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        conn.execute(
            sa.insert(t.records).values(
                **row | {"message_id": new_message, "position": 1, "doc_type": "resend"},
                doc_ref_id=live[PO_KEY].doc_ref_id,
            )
        )
    for kind, key in (("other_platform_operators", None), ("platform_operator", "FR-1"), ("seller", None)):
        with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:  # only the operator has no key
            conn.execute(
                sa.insert(t.records).values(
                    **row
                    | {"message_id": new_message, "position": 5, "doc_type": "new", "kind": kind, "seller_key": key},
                    doc_ref_id=f"DE2025-{kind}-keyless",
                )
            )
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:  # only the operator is resent
        conn.execute(
            sa.insert(t.records).values(
                **row
                | {
                    "message_id": new_message,
                    "position": 2,
                    "doc_type": "resend",
                    "kind": "seller",
                    "seller_key": "S1",
                },
                doc_ref_id=live[(SELLER, "S1")].doc_ref_id,
            )
        )
    with pytest.raises(sa.exc.IntegrityError):
        _raw_message(ledger, "RAW-1")  # MessageRefId unique


def _raw_message(ledger: Ledger, ref: str) -> int:
    with ledger.engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(t.messages)
                .values(
                    message_ref_id=ref,
                    environment="test",
                    authority="DE",
                    operator="x",
                    reporting_year=2025,
                    message_type_indic="DPI401",
                    file_name="f",
                    sha256="0" * 64,
                    run_id="r",
                    created=sa.func.now(),
                    status="rendered",
                )
                .returning(t.messages.c.id)
            ).scalar_one()
        )


def test_test_filings_never_count_for_production(ledger: Ledger) -> None:
    Filer(ledger, environment="test").file(current(sellers={"S1": 1}))
    prod = Filer(ledger, environment="prod")
    assert prod.live() == {}
    [msg] = prod.plan(current(sellers={"S1": 1}))
    assert [r.doc_type_indic for r in msg.records] == ["OECD1", "OECD1"]  # a first filing, production codes
    assert [m.environment for m in ledger.messages(environment="test")] == ["test"]
    assert ledger.messages(environment="prod") == []


def test_a_failing_rename_rolls_the_publication_back(ledger: Ledger, tmp_path: Path) -> None:
    f = Filer(ledger)
    f.file(current(sellers={"S1": 1}))
    before = f.live()
    [ref] = f.record(f.plan(current(sellers={"S1": 2})))
    staged, published = tmp_path / "staged.xml", tmp_path / "out" / "published.xml"
    with pytest.raises(FileNotFoundError), ledger.publishing(ref) as conn:
        assert conn is not None
        os.replace(staged, published)  # nothing staged: the rename fails
    assert ledger.message(ref).status == "rendered"
    assert f.live() == before  # the corrected record is not superseded
    staged.write_text("<x/>")
    published.parent.mkdir()
    with ledger.publishing(ref):
        os.replace(staged, published)
    assert ledger.message(ref).status == "published"
    assert f.live()[(SELLER, "S1")].content["v"] == 2
    with pytest.raises(LedgerError, match="is published: only a rendered message can be published"):
        ledger.mark_published(ref)


def test_messages_of_a_plan_are_published_in_order(ledger: Ledger) -> None:
    f = Filer(ledger)
    f.file(current(sellers={"S1": 1}))
    correction, additional = f.record(f.plan(current(po=2, sellers={"S1": 1, "S2": 1})))
    with pytest.raises(
        LedgerError, match="not a live record of DE 2025 \\(test\\); publish the messages of a plan in order"
    ):
        ledger.mark_published(additional)  # resends the operator id the correction makes live
    ledger.mark_published(correction)
    ledger.mark_published(additional)


def test_a_crash_between_render_and_publish_is_pending_until_discarded(ledger: Ledger) -> None:
    f = Filer(ledger)
    [ref] = f.record(f.plan(current(sellers={"S1": 1})))
    assert [m.message_ref_id for m in ledger.pending("test", "DE", 2025)] == [ref]
    assert ledger.pending("prod", "DE", 2025) == []
    with pytest.raises(LedgerError, match=f"message {ref} of run .* never published; publish or discard it first"):
        Filer(ledger).record(Filer(ledger).plan(current(sellers={"S1": 1})))
    ids = {r.doc_ref_id for r in ledger.records(ref)}
    ledger.discard(ref)
    assert ledger.pending("test", "DE", 2025) == []
    assert ledger.message(ref).status == "discarded"
    assert set(ledger.known_records(ids)) == ids  # discarded ids stay used
    [again] = Filer(ledger).file(current(sellers={"S1": 1}))
    assert not ids & {r.doc_ref_id for r in ledger.records(again)}
    with pytest.raises(LedgerError, match="only a rendered, unpublished message can be discarded"):
        ledger.discard(again)
    with pytest.raises(UnknownMessageError):
        ledger.discard("nope")


# ------------------------------------------------------------------------------------------- lock

_HOLD = textwrap.dedent(
    """
    import sys
    from reporting.ledger import open_ledger
    with open_ledger(sys.argv[1]) as ledger, ledger.lock("test", "DE", 2025, holder=sys.argv[2]):
        print("locked", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


@contextmanager
def holder(url: str, name: str) -> Iterator[subprocess.Popen[str]]:
    """Another process that takes the filing lock of DE 2025 (test) and holds it until told."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, url, name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def test_two_processes_cannot_file_the_same_period_at_once(ledger_url: str) -> None:
    with open_ledger(ledger_url):  # migrate before the processes start
        pass
    with holder(ledger_url, "run-A") as first, open_ledger(ledger_url) as ledger:
        start = time.monotonic()
        with pytest.raises(LedgerLockedError) as caught, ledger.lock("test", "DE", 2025, holder="run-B"):
            pass
        assert time.monotonic() - start < 5  # fails fast, does not wait
        assert "DE 2025 (test) is being filed by another run (held by run-A since" in str(caught.value)
        with ledger.lock("prod", "DE", 2025, holder="run-B"), ledger.lock("test", "FR", 2025, holder="run-B"):
            pass  # another environment or authority is another lock
        assert first.stdin is not None and first.stdout is not None
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.stdout.readline().strip() == "released"
        assert first.wait(timeout=30) == 0
        with ledger.lock("test", "DE", 2025, holder="run-B") as info:
            assert ledger.lock_holder("test", "DE", 2025) == info
        assert ledger.lock_holder("test", "DE", 2025) is None


def test_a_run_that_dies_frees_its_lock(ledger_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL ends the dead session's lock; SQLite's lock row of a process that ran on this
    machine and has ended is taken over, with a warning."""
    with open_ledger(ledger_url):
        pass
    with holder(ledger_url, "run-dead"):
        pass  # killed while it holds the lock
    with open_ledger(ledger_url) as ledger:
        if ledger.dialect == "sqlite":
            with caplog.at_level("WARNING"), ledger.lock("test", "DE", 2025, holder="run-B"):
                pass
            assert "taking over the filing lock of run-dead: its process" in caplog.text
            assert ledger.lock_holder("test", "DE", 2025) is None
            return
        deadline = time.monotonic() + 10
        while ledger.dialect == "postgresql":  # the server ends the dead session as soon as it sees it
            try:
                with ledger.lock("test", "DE", 2025, holder="run-probe"):
                    break
            except LedgerLockedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with ledger.lock("test", "DE", 2025, holder="run-B"):
            if ledger.dialect == "postgresql":
                with pytest.raises(LedgerLockedError, match="cannot be broken from here"):
                    ledger.break_lock("test", "DE", 2025)


def test_a_sqlite_lock_of_another_machine_or_a_live_process_is_never_presumed_dead(ledger: Ledger) -> None:
    if ledger.dialect != "sqlite":
        pytest.skip("PostgreSQL's lock ends with the session that held it")
    for host, pid in (("another-machine", 999_999_999), (socket.gethostname(), os.getpid())):
        with ledger.engine.begin() as conn:
            conn.execute(
                sa.insert(t.locks).values(
                    environment="test",
                    authority="DE",
                    reporting_year=2025,
                    holder="run-A",
                    acquired=sa.func.now(),
                    host=host,
                    pid=pid,
                )
            )
        with (
            pytest.raises(LedgerLockedError, match="dac7 ledger unlock --environment test --authority DE --year 2025"),
            ledger.lock("test", "DE", 2025, holder="run-B"),
        ):
            pass
        broken = ledger.break_lock("test", "DE", 2025)
        assert broken is not None and broken.holder == "run-A"


def test_a_retry_of_the_same_run_takes_its_own_lock_over(ledger: Ledger) -> None:
    if ledger.dialect != "sqlite":
        pytest.skip("PostgreSQL's lock ends with the session that held it")
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.insert(t.locks).values(
                environment="test", authority="DE", reporting_year=2025, holder="run-A", acquired=sa.func.now()
            )
        )
    with ledger.lock("test", "DE", 2025, holder="run-A"):
        pass
    assert ledger.lock_holder("test", "DE", 2025) is None


# ------------------------------------------------------------------------------------ status: EU


def eu_status(
    original: str,
    status: str,
    *,
    file_errors: tuple[tuple[str, str], ...] = (),
    record_errors: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
    nsmap_root: bool = True,
) -> etree._Element:
    def el(parent: etree._Element | None, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
        e = (
            etree.Element(f"{{{DSM}}}{tag}", nsmap={"dsm": DSM})
            if parent is None
            else etree.SubElement(parent, f"{{{DSM}}}{tag}", attrs)
        )
        if text is not None:
            e.text = text
        return e

    root = el(None, "DAC7StatusMessage")
    root.set("version", "1.0")
    spec = el(root, "MessageSpec")
    for tag, text in (
        ("TransmittingCountry", "DE"),
        ("ReceivingCountry", "LT"),
        ("MessageType", "DPI"),
        ("MessageRefId", f"DE2026LT{uuid.uuid4().hex}"),
        ("Timestamp", "2026-02-01T10:00:00"),
    ):
        el(spec, tag, text)
    body = el(root, "DSMBody")
    el(el(body, "OriginalMessage"), "OriginalMessageRefID", original)
    errors = el(body, "ValidationErrors")
    for code, details in file_errors:
        fe = el(errors, "FileError")
        el(fe, "Code", code)
        el(fe, "Details", details, Language="EN")
    for code, details, ids in record_errors:
        re_ = el(errors, "RecordError")
        el(re_, "Code", code)
        el(re_, "Details", details)
        for doc_ref_id in ids:
            el(re_, "DocRefIDInError", doc_ref_id)
        el(el(re_, "FieldsInError"), "FieldPath", "DPIBody/ReportableSeller/Identity")
    result = el(body, "ValidationResult")
    el(result, "Status", status)
    el(result, "ValidatedBy", "DAC7 validation module 1.1.0 (synthetic test document)")
    return root


@pytest.fixture(scope="module")
def eu_schema() -> etree.XMLSchema:
    require_file(EU_STATUS_XSD)
    return etree.XMLSchema(etree.parse(str(EU_STATUS_XSD)))


def write(tmp_path: Path, root: etree._Element, schema: etree.XMLSchema | None = None) -> Path:
    if schema is not None:
        assert schema.validate(root), schema.error_log
    path = tmp_path / f"status-{uuid.uuid4().hex[:8]}.xml"
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return path


def test_an_accepted_status_accepts_the_message_and_its_records(
    ledger: Ledger, tmp_path: Path, eu_schema: etree.XMLSchema
) -> None:
    f = Filer(ledger)
    [ref] = f.file(current(sellers={"S1": 1}))
    path = write(tmp_path, eu_status(ref, "Accepted"), eu_schema)
    outcome = import_status(ledger, path)
    assert (outcome.outcome, outcome.message_status, outcome.rejected_doc_ref_ids) == ("accepted", "accepted", ())
    assert {r.status for r in ledger.records(ref)} == {"accepted"}
    assert import_status(ledger, path).already_imported  # the same file twice changes nothing
    with pytest.raises(LedgerError, match="already accepted by an earlier status document"):
        import_status(ledger, write(tmp_path, eu_status(ref, "Rejected"), eu_schema))


def test_a_partially_rejected_message_stays_live_and_its_rejected_records_are_corrected(
    ledger: Ledger, tmp_path: Path, eu_schema: etree.XMLSchema
) -> None:
    f = Filer(ledger)
    [ref] = f.file(current(sellers={"S1": 1, "S2": 1}))
    s2 = f.live()[(SELLER, "S2")].doc_ref_id
    doc = eu_status(
        ref,
        "Accepted",
        file_errors=(("50012", "receiving country"),),
        record_errors=(("40070", "not resident in the receiving state", (s2,)), ("40130", "birth year", ())),
    )
    outcome = import_status(ledger, write(tmp_path, doc, eu_schema))
    assert (outcome.outcome, outcome.message_status) == ("partially_rejected", "accepted")
    assert outcome.rejected_doc_ref_ids == (s2,)
    assert (outcome.file_errors, outcome.record_errors) == (1, 2)
    live = f.live()
    assert live[(SELLER, "S2")].rejected and not live[(SELLER, "S1")].rejected
    errors = ledger.errors(ref)
    assert [(e.scope, e.code, e.doc_ref_id) for e in errors] == [
        ("file", "50012", None),
        ("record", "40070", s2),
        ("record", "40130", None),
    ]
    assert errors[1].fields == ("DPIBody/ReportableSeller/Identity",) and errors[1].format == "eu-dac7-status"
    [listed] = ledger.messages()
    assert (listed.rejected_records, listed.errors) == (1, 3)
    [correction] = f.plan(current(sellers={"S1": 1, "S2": 1}))  # unchanged, but S2 was rejected
    assert [(r.seller_key, r.doc_type, r.corr_doc_ref_id) for r in correction.sellers] == [("S2", "correction", s2)]


def test_a_rejected_message_is_not_live_and_what_it_replaced_is_live_again(
    ledger: Ledger, tmp_path: Path, eu_schema: etree.XMLSchema
) -> None:
    f = Filer(ledger)
    [initial] = f.file(current(sellers={"S1": 1, "S2": 1}))
    import_status(ledger, write(tmp_path, eu_status(initial, "Accepted"), eu_schema))
    first = f.live()
    [correction] = f.file(current(sellers={"S1": 2}))  # corrects S1, deletes S2
    assert set(f.live()) == {PO_KEY, (SELLER, "S1")}
    outcome = import_status(ledger, write(tmp_path, eu_status(correction, "Rejected"), eu_schema))
    assert outcome.message_status == "rejected" and len(outcome.rejected_doc_ref_ids) == 3
    assert f.live() == first  # S1 v1 and S2 are the live versions again, accepted
    assert {r.status for r in ledger.records(initial)} == {"accepted"}
    [again] = f.plan(current(sellers={"S1": 2}))
    assert [(r.seller_key, r.doc_type, r.corr_doc_ref_id) for r in again.sellers] == [
        ("S1", "correction", first[(SELLER, "S1")].doc_ref_id),
        ("S2", "deletion", first[(SELLER, "S2")].doc_ref_id),
    ]


def test_a_rejected_first_filing_comes_back_as_new(ledger: Ledger, tmp_path: Path, eu_schema: etree.XMLSchema) -> None:
    f = Filer(ledger)
    [ref] = f.file(current(sellers={"S1": 1}))
    import_status(ledger, write(tmp_path, eu_status(ref, "Rejected", file_errors=(("50007", "schema"),)), eu_schema))
    assert f.live() == {}
    [msg] = f.plan(current(sellers={"S1": 1}))
    assert msg.message_type_indic == "DPI401" and {r.doc_type for r in msg.records} == {"new"}


def test_a_rejected_deletion_gives_the_record_back(ledger: Ledger, tmp_path: Path, eu_schema: etree.XMLSchema) -> None:
    f = Filer(ledger)
    f.file(current(sellers={"S1": 1, "S2": 1}))
    [deletion] = f.file(current(sellers={"S1": 1}))
    deleted = next(r.doc_ref_id for r in ledger.records(deletion) if r.doc_type == "deletion")
    doc = eu_status(deletion, "Accepted", record_errors=(("80002", "unknown record", (deleted, "ZZ-unknown")),))
    outcome = import_status(ledger, write(tmp_path, doc, eu_schema))
    assert outcome.unmatched_doc_ref_ids == ("ZZ-unknown",)
    assert (SELLER, "S2") in f.live()


def test_a_status_for_an_unknown_message_is_refused(ledger: Ledger, tmp_path: Path, eu_schema: etree.XMLSchema) -> None:
    with pytest.raises(UnknownMessageError, match="answers MessageRefId DE2025DEnope, which is not in this ledger"):
        import_status(ledger, write(tmp_path, eu_status("DE2025DEnope", "Accepted"), eu_schema))
    f = Filer(ledger)
    [ref] = f.record(f.plan(current(sellers={"S1": 1})))
    with pytest.raises(LedgerError, match="is rendered: it was never published"):
        import_status(ledger, write(tmp_path, eu_status(ref, "Accepted"), eu_schema))


# ----------------------------------------------------------------------------------- status: DIP


def dip_schema(tmp_path: Path, namespace: str) -> etree.XMLSchema:
    """The reference dip-types.xsd (its namespace moved to v2 where asked), with a response schema
    around its processStatusType."""
    require_file(DIP_TYPES_XSD)
    folder = tmp_path / f"dip-{namespace.rstrip('/').rsplit('/', 1)[-1]}"
    folder.mkdir(exist_ok=True)
    types = DIP_TYPES_XSD.read_text(encoding="utf-8").replace(DIP_V1, namespace)
    (folder / "dip-types.xsd").write_text(types, encoding="utf-8")
    (folder / "dip-response.xsd").write_text(
        f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{namespace}"
            targetNamespace="{namespace}" elementFormDefault="qualified">
          <xs:include schemaLocation="dip-types.xsd"/>
          <xs:element name="dipResponse">
            <xs:complexType>
              <xs:sequence>
                <xs:element name="responseTransferticketId" type="customTicketIdNumberType"/>
                <xs:element name="dipProtocol" type="DipProtocolType"/>
              </xs:sequence>
              <xs:attribute name="version" type="xs:string" use="required"/>
            </xs:complexType>
          </xs:element>
          <xs:complexType name="DipProtocolType">
            <xs:sequence>
              <xs:element name="consignment" type="ConsignmentType" minOccurs="0"/>
              <xs:element name="processStatus" type="processStatusType"/>
              <xs:element name="dipResult" minOccurs="0" maxOccurs="unbounded">
                <xs:complexType>
                  <xs:sequence>
                    <xs:element name="code" type="xs:string"/>
                    <xs:element name="message" type="xs:string" minOccurs="0"/>
                    <xs:element name="cause" type="xs:anyType" minOccurs="0"/>
                  </xs:sequence>
                </xs:complexType>
              </xs:element>
              <xs:element name="payloadResult" minOccurs="0" maxOccurs="unbounded">
                <xs:complexType>
                  <xs:complexContent>
                    <xs:extension base="xs:anyType">
                      <xs:attribute name="consignmentItemPosition" type="consignmentItemPositionType" use="required"/>
                    </xs:extension>
                  </xs:complexContent>
                </xs:complexType>
              </xs:element>
            </xs:sequence>
          </xs:complexType>
        </xs:schema>""",
        encoding="utf-8",
    )
    return etree.XMLSchema(etree.parse(str(folder / "dip-response.xsd")))


def dip_response(
    namespace: str,
    transfer_id: str,
    status: str,
    *,
    dip_errors: tuple[tuple[str, str], ...] = (),
    payload: etree._Element | None = None,
) -> etree._Element:
    def el(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
        e = etree.SubElement(parent, f"{{{namespace}}}{tag}")
        e.text = text
        return e

    root = etree.Element(f"{{{namespace}}}dipResponse", {"version": "1.0"}, nsmap={"dip": namespace})
    el(root, "responseTransferticketId", f"R-{uuid.uuid4().hex[:12]}")
    protocol = el(root, "dipProtocol")
    consignment = el(protocol, "consignment")
    customer = el(consignment, "customerIdentifier")
    el(customer, "identityProvider", "BZST-CERT")
    el(customer, "identifier", "bz1234567890")
    el(consignment, "creationTime", "2026-01-15T06:00:00")
    el(consignment, "transferticketId", transfer_id)
    el(protocol, "processStatus", status)
    for code, message in dip_errors:
        result = el(protocol, "dipResult")
        el(result, "code", code)
        el(result, "message", message)
    if payload is not None:
        item = el(protocol, "payloadResult")
        item.set("consignmentItemPosition", "0")
        item.append(payload)
    return root


@pytest.mark.parametrize("namespace", [DIP_V1, DIP_V2])
def test_the_dip_protocol_is_matched_by_its_transfer_ticket(
    ledger: Ledger, tmp_path: Path, eu_schema: etree.XMLSchema, namespace: str
) -> None:
    schema = dip_schema(tmp_path, namespace)
    f = Filer(ledger)
    [ref] = f.file(current(sellers={"S1": 1, "S2": 1}))
    s1 = f.live()[(SELLER, "S1")].doc_ref_id
    inner = eu_status(ref, "Accepted", record_errors=(("40080", "TIN without issuing country", (s1,)),))
    assert eu_schema.validate(inner), eu_schema.error_log
    doc = dip_response(namespace, f"T-{ref}", "PARTIALLY_REJECTED", payload=inner)
    outcome = import_status(ledger, write(tmp_path, doc, schema))
    assert (outcome.format, outcome.outcome, outcome.message_status) == (
        "de-dip-protocol",
        "partially_rejected",
        "accepted",
    )
    assert outcome.rejected_doc_ref_ids == (s1,)
    assert f.live()[(SELLER, "S1")].rejected


def test_a_dip_error_rejects_the_message(ledger: Ledger, tmp_path: Path) -> None:
    schema = dip_schema(tmp_path, DIP_V1)
    f = Filer(ledger)
    [ref] = f.file(current(sellers={"S1": 1}))
    doc = dip_response(DIP_V1, f"T-{ref}", "ERROR", dip_errors=(("E0021", "Signatur ungültig"),))
    outcome = import_status(ledger, write(tmp_path, doc, schema))
    assert outcome.message_status == "rejected" and f.live() == {}
    assert [(e.code, e.details) for e in ledger.errors(ref)] == [("E0021", "Signatur ungültig")]


def test_a_partial_rejection_naming_no_record_says_so_and_accepts_nothing(ledger: Ledger, tmp_path: Path) -> None:
    schema = dip_schema(tmp_path, DIP_V1)
    f = Filer(ledger)
    [ref] = f.file(current(sellers={"S1": 1}))
    payload = etree.Element("Fehlerliste")
    payload.text = "Datensatz 3: Feld unzulässig"
    doc = dip_response(DIP_V1, f"T-{ref}", "PARTIALLY_REJECTED", payload=payload)
    outcome = import_status(ledger, write(tmp_path, doc, schema))
    assert outcome.notes and "names no DocRefId" in outcome.notes[0]
    assert {r.status for r in ledger.records(ref)} == {"sent"}  # not known to stand: not accepted
    assert [e.code for e in ledger.errors(ref)] == ["payload"]


# ---------------------------------------------------------------------------------- hardened parser


def test_a_format_without_adapter_is_named(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text('<Protocol xmlns="urn:example:other"><Status>OK</Status></Protocol>')
    with pytest.raises(StatusFormatError, match="no status adapter for this format"):
        import_status(ledger, path)
    path.write_text("not xml at all")
    with pytest.raises(StatusFormatError, match="not well-formed XML"):
        import_status(ledger, path)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<dsm:DAC7StatusMessage xmlns:dsm="urn:oecd:ties:dsm:v1"><dsm:DSMBody>
<dsm:OriginalMessage><dsm:OriginalMessageRefID>&lol9;</dsm:OriginalMessageRefID></dsm:OriginalMessage>
</dsm:DSMBody></dsm:DAC7StatusMessage>
"""


def test_hostile_documents_are_refused_unexpanded(ledger: Ledger, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TIN-12345")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        '<dsm:DAC7StatusMessage xmlns:dsm="urn:oecd:ties:dsm:v1"><dsm:DSMBody><dsm:OriginalMessage>'
        "<dsm:OriginalMessageRefID>&xxe;</dsm:OriginalMessageRefID></dsm:OriginalMessage></dsm:DSMBody>"
        "</dsm:DAC7StatusMessage>"
    )
    for name, data in (
        ("laughs.xml", BILLION_LAUGHS.encode()),
        ("xxe.xml", xxe.encode()),
        # In UTF-16 the byte check does not see the DOCTYPE: the parser refuses the amplification,
        # and the parsed document still shows its DOCTYPE.
        (
            "laughs-utf16.xml",
            BILLION_LAUGHS.replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16"),
        ),
        ("xxe-utf16.xml", xxe.replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16")),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        start = time.monotonic()
        with pytest.raises(StatusFormatError, match=r"DOCTYPE|entity amplification") as caught:
            import_status(ledger, path)
        assert time.monotonic() - start < 2
        assert "TOP-SECRET" not in str(caught.value)
    assert ledger.messages() == []


def test_a_document_over_the_size_limit_is_not_read(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(b"<a>" + b"x" * 2000 + b"</a>")
    with pytest.raises(StatusFormatError, match="more than the 1000 bytes a status document may have"):
        import_status(ledger, path, max_bytes=1000)


# ------------------------------------------------------------------------------------------- CLI


def test_the_ledger_commands(
    ledger_url: str, tmp_path: Path, eu_schema: etree.XMLSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_ledger(ledger_url) as ledger:
        f = Filer(ledger)
        [ref] = f.file(current(sellers={"S1": 1, "S2": 1}))
        s2 = f.live()[(SELLER, "S2")].doc_ref_id
    status = write(tmp_path, eu_status(ref, "Accepted", record_errors=(("40070", "x", (s2,)),)), eu_schema)
    assert main(["status-import", str(status), "--ledger", ledger_url]) == 0
    out = capsys.readouterr().out
    assert f"{ref}: partially rejected (eu-dac7-status), message accepted; 1 record(s) rejected: {s2}" in out
    assert main(["status-import", str(status), "--ledger", ledger_url]) == 0
    assert "already imported" in capsys.readouterr().out

    assert main(["ledger", "list", "--ledger", ledger_url, "--authority", "de", "--environment", "test"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["created", "(UTC)", "auth", "year", "env", "type", "MessageRefId", "sellers", "status"]
    assert table[1].split()[2:8] == ["DE", "2025", "test", "DPI401", ref, "2"]
    assert table[1].endswith("  accepted (1 record(s) rejected), 1 error(s)")
    assert main(["ledger", "list", "--ledger", ledger_url, "--year", "2024"]) == 0
    assert capsys.readouterr().out.strip() == "no messages"

    assert (
        main(
            ["ledger", "unlock", "--ledger", ledger_url, "--environment", "test", "--authority", "DE", "--year", "2025"]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == "no filing lock for DE 2025 (test)"

    with open_ledger(ledger_url) as ledger:
        f = Filer(ledger)
        [pending] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))  # corrects the rejected S2
    assert main(["ledger", "discard", pending, "--ledger", ledger_url]) == 0
    assert capsys.readouterr().out.strip() == f"{pending}: discarded (its ids stay used)"
    assert main(["ledger", "discard", pending, "--ledger", ledger_url]) == 1
    assert "only a rendered, unpublished message can be discarded" in capsys.readouterr().err

    missing = write(tmp_path, eu_status("DE2025DEnope", "Accepted"), eu_schema)
    assert main(["status-import", str(missing), "--ledger", ledger_url]) == 1
    assert "which is not in this ledger" in capsys.readouterr().err


def test_the_ledger_url_comes_from_the_flag_the_config_or_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAC7_LEDGER_URL", raising=False)
    assert main(["ledger", "list"]) == 1  # no ledger in the working directory: nothing recorded here
    assert f"there is no ledger at {tmp_path / 'dac7-ledger.sqlite3'}" in capsys.readouterr().err
    with open_ledger(default_ledger_url(tmp_path)) as ledger:
        Filer(ledger).file(current(sellers={"S1": 1}))
    assert main(["ledger", "list"]) == 0
    assert "DPI401" in capsys.readouterr().out

    config = (REPO / "dac7.toml").read_text(encoding="utf-8")
    elsewhere = tmp_path / "elsewhere" / "ledger.sqlite3"
    (tmp_path / "dac7.toml").write_text(config + f'\n[ledger]\nurl = "sqlite:///{elsewhere}"\n', encoding="utf-8")
    with open_ledger(f"sqlite:///{elsewhere}"):
        pass
    assert main(["ledger", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no messages"  # the configured ledger, not the file here

    (tmp_path / "dac7.toml").write_text(
        config + '\n[ledger]\nurl = "postgresql+psycopg://dac7:secret@db/ledger"\n', encoding="utf-8"
    )
    assert main(["ledger", "list"]) == 2
    assert "[ledger] url holds a password" in capsys.readouterr().err


def test_the_command_runs_from_any_directory_without_alembic_ini(tmp_path: Path) -> None:
    url = default_ledger_url(tmp_path)
    with open_ledger(url) as ledger:
        Filer(ledger).file(current(sellers={"S1": 1}))
    done = subprocess.run(
        [sys.executable, "-m", "reporting.cli", "ledger", "list", "--ledger", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "DPI401" in done.stdout and not (tmp_path / "alembic.ini").exists()
