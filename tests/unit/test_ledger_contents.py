"""The render's store of record contents: owner-only, the same text and hash as in memory, given
back in the order asked, deleted when closed."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

import pytest

from reporting.ledger import (
    OTHER_PLATFORM_OPERATORS,
    PO_KEY,
    SELLER,
    LedgerError,
    PlannedRecord,
    RecordKey,
    canonical_json,
    content_hash,
    opo_key,
)
from reporting.ledger.contents import LOOKUP_BATCH, STORED, WRITE_BATCH, ContentStore
from reporting.ledger.errors import ContentStoreError
from reporting.ledger.plan import body_order
from reporting.shared_staging import local_only
from reporting.stages.render import SHARED_SELLERS_FILE, contents_file


def planned(key: RecordKey, content: Any = STORED) -> PlannedRecord:
    return PlannedRecord(key[0], key[1], "new", "OECD11", f"ID-{key[1]}", None, "h", content)


def seller(i: int) -> dict[str, Any]:
    return {"seller_id": f"S{i:05d}", "name": "Ona Petraitė", "figures": [i, 2.5, None], "vat": {"b": 1, "a": 2}}


def test_the_file_is_owner_only_from_its_creation_and_deleted_on_close(tmp_path: Path) -> None:
    path = tmp_path / "contents"
    path.write_text("stale")  # replaced, not appended to
    with ContentStore(path) as store:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        store.put((SELLER, "S1"), seller(1))
        assert list(store.contents([planned((SELLER, "S1"))])) == [seller(1)]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["contents"]  # no journal beside it
    assert not path.exists()


def test_put_gives_the_content_hash_and_the_stored_text_is_the_canonical_json(tmp_path: Path) -> None:
    with ContentStore(tmp_path / "c") as store:
        assert store.put((SELLER, "S1"), seller(1)) == content_hash(seller(1))
        (text,) = store.texts([planned((SELLER, "S1"))])
    assert text == canonical_json(seller(1))
    assert text.startswith('{"figures":[1,2.5,null],"name":"Ona Petraitė"')  # sorted keys, UTF-8 kept


def test_contents_come_back_in_the_order_asked_across_batches(tmp_path: Path) -> None:
    n = WRITE_BATCH + LOOKUP_BATCH + 7  # a partial batch in the file and in the last lookup
    with ContentStore(tmp_path / "c") as store:
        for i in reversed(range(n)):
            store.put((SELLER, f"S{i:05d}"), seller(i))
        order = [3, 0, n - 1, *range(1, n - 1, 2), 2]  # not the key order, one key twice
        got = list(store.contents(planned((SELLER, f"S{i:05d}")) for i in order))
    assert got == [seller(i) for i in order]


def test_a_record_that_carries_its_content_keeps_it(tmp_path: Path) -> None:
    po = {"name": "Demo Marketplace UAB"}
    with ContentStore(tmp_path / "c") as store:
        store.put((SELLER, "S1"), seller(1))
        records = [planned(PO_KEY, po), planned((SELLER, "S1")), planned((SELLER, "S2"), {"deleted": True})]
        assert list(store.contents(records)) == [po, seller(1), {"deleted": True}]
        assert [json.loads(t) for t in store.texts(records)] == [po, seller(1), {"deleted": True}]


def test_a_key_not_stored_and_a_key_stored_twice_are_refused(tmp_path: Path) -> None:
    with ContentStore(tmp_path / "c") as store:
        store.put((SELLER, "S1"), seller(1))
        with pytest.raises(KeyError, match="seller:S2"):
            list(store.contents([planned((SELLER, "S2"))]))
        store.put((SELLER, "S1"), seller(2))
        with pytest.raises(ContentStoreError, match="stored twice") as exc:
            list(store.texts([planned((SELLER, "S1"))]))
    message = str(exc.value)
    assert f"the content store {tmp_path / 'c'} of this period: the record seller:S1 was stored twice" in message
    assert "Ona" not in message  # the key, never the content


def test_a_key_stored_twice_in_one_batch_is_named_with_the_file_and_the_period(tmp_path: Path) -> None:
    with ContentStore(tmp_path / "c", "DE 2025 (test)") as store:
        store.put((SELLER, "S1"), seller(1))
        store.put((SELLER, "S2"), seller(2))
        store.put((SELLER, "S2"), seller(3))  # both in the pending batch, none in the file yet
        with pytest.raises(ContentStoreError) as exc:
            list(store.items(SELLER))
    assert isinstance(exc.value, LedgerError)  # the CLI reports it as a ReportingError, no traceback
    assert str(exc.value) == (
        f"the content store {tmp_path / 'c'} of DE 2025 (test): the record seller:S2 was stored twice "
        "(each record is stored once)"
    )


def test_a_store_that_cannot_be_created_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(sqlite3, "connect", refused)
    with pytest.raises(ContentStoreError) as exc:
        ContentStore(tmp_path / "c", "DE 2025 (test)")
    assert str(exc.value) == (
        f"the content store {tmp_path / 'c'} of DE 2025 (test): creating the file failed: unable to open database file"
    )
    assert list(tmp_path.iterdir()) == []  # the empty 0600 file made before the connection is gone


def test_a_folder_that_does_not_exist_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(
        ContentStoreError, match=r"missing/c of DE 2025 \(test\): creating the file failed: .*No such file"
    ):
        ContentStore(tmp_path / "missing" / "c", "DE 2025 (test)")


class FailingConnection:
    """An SQLite connection whose statements fail as on a full disk."""

    total_changes = 0

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, *args: Any) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    executemany = execute

    def close(self) -> None:
        self.db.close()


def test_a_full_disk_while_writing_or_reading_names_the_operation_and_the_key(tmp_path: Path) -> None:
    with ContentStore(tmp_path / "c", "DE 2025 (test)") as store:
        store.put((SELLER, "S1"), seller(1))
        assert list(store.contents([planned((SELLER, "S1"))])) == [seller(1)]  # flushed
        store._db = FailingConnection(store._db)  # type: ignore[assignment]
        where = f"the content store {tmp_path / 'c'} of DE 2025 (test)"
        with pytest.raises(ContentStoreError) as exc:
            list(store.items(SELLER))
        assert str(exc.value) == f"{where}: reading the seller records failed: database or disk is full"
        with pytest.raises(ContentStoreError) as exc:
            list(store.texts([planned(PO_KEY, {"operator": 1}), planned((SELLER, "S1"))]))
        assert str(exc.value) == f"{where}: reading 1 record(s) from seller:S1 failed: database or disk is full"
        store.put((SELLER, "S2"), seller(2))
        store.put((SELLER, "S3"), seller(3))
        with pytest.raises(ContentStoreError) as exc:
            store._flush()
        assert str(exc.value) == f"{where}: writing 2 record(s) from seller:S2 failed: database or disk is full"
    assert not (tmp_path / "c").exists()


def test_the_file_is_a_temp_file_shared_staging_keeps_on_the_worker(tmp_path: Path) -> None:
    settings = SimpleNamespace(stage_dir=lambda name: tmp_path / "run" / name)
    path = contents_file(settings, "DE")  # type: ignore[arg-type]
    assert path == tmp_path / "run" / "render" / ".seller_contents-DE.tmp"
    assert local_only(PurePosixPath("render") / path.name)
    assert not local_only(PurePosixPath("render/DE/DPI_DE_2025.xml"))
    assert local_only(PurePosixPath("render") / SHARED_SELLERS_FILE / "rows.parquet")  # the sellers' rows too


def test_stored_is_one_marker_that_names_itself() -> None:
    assert repr(STORED) == "STORED"
    assert planned((SELLER, "S1")).content is STORED


def test_items_are_one_kinds_keys_and_hashes_in_body_order(tmp_path: Path) -> None:
    keys = ["S2", "S10", "Ž-1", "S1", "s1", "S1-x0", ""]  # text order, not number order; UTF-8 beyond ASCII
    with ContentStore(tmp_path / "c") as store:
        for k in keys:
            store.put((SELLER, k), seller(len(k)))
        store.put(opo_key("assumed:FR-1"), {"other": 1})  # another kind, left out
        store.put(PO_KEY, {"operator": 1})
        items = list(store.items(SELLER))
        assert [k for k, _, _ in items] == body_order((SELLER, k) for k in keys)
        assert [k[1] for k, _, _ in items] == ["", "S1", "S1-x0", "S10", "S2", "s1", "Ž-1"]
        assert all(h == content_hash(seller(len(k[1] or ""))) and c is STORED for k, h, c in items)
        assert [k for k, _, _ in store.items(OTHER_PLATFORM_OPERATORS)] == [opo_key("assumed:FR-1")]
