"""The render's store of record contents: owner-only, the same text and hash as in memory, given
back in the order asked, deleted when closed."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from reporting.ledger import (
    OTHER_PLATFORM_OPERATORS,
    PO_KEY,
    SELLER,
    PlannedRecord,
    RecordKey,
    canonical_json,
    content_hash,
    opo_key,
)
from reporting.ledger.contents import LOOKUP_BATCH, STORED, WRITE_BATCH, ContentStore
from reporting.ledger.plan import body_order


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
        with pytest.raises(ValueError, match="stored twice"):
            list(store.texts([planned((SELLER, "S1"))]))


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
