"""The render's store of the sellers' contents, wired: no file of it is left after a render or a
failed one (a killed one's is removed by the next render), and the ledger records the same
content and content hash as from the contents in memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_pipeline_cases import decided

from reporting import pipeline
from reporting.ledger import canonical_json, content_hash, contents, open_ledger
from reporting.ledger.contents import ContentStore, PlannedRecords, PlannedRecordsSink
from reporting.ledger.schema import records as ledger_records
from reporting.settings import load_settings
from reporting.stages import render as render_stage
from reporting.stages.plan import ledger_url


def leftovers(run_dir: str) -> list[str]:
    return sorted(p.name for p in (Path(run_dir) / "render").glob(".seller_contents*"))


def test_the_ledger_records_the_stored_texts_and_no_store_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a preview: one ledger of its own per authority (LT, PL), both rendered over the shared rows
    run_dir = decided(tmp_path, routing="jurisdiction")
    render_dir = Path(run_dir) / "render"
    render_dir.mkdir(exist_ok=True)
    for name in (".seller_contents-LT.tmp", ".seller_contents-DE.tmp", ".seller_contents-FR"):
        (render_dir / name).write_text("a killed render's")  # the old name (no .tmp) as well
    put: dict[tuple[str, Any], Any] = {}
    store_put = ContentStore.put

    def spy(self: ContentStore, key: Any, content: Any) -> str:
        put[key] = content
        return store_put(self, key, content)

    monkeypatch.setattr(ContentStore, "put", spy)
    result = pipeline.render(run_dir)
    assert [(m["authority"], m["sellers"]) for m in result["messages"]] == [("LT", 1), ("PL", 1)]
    assert leftovers(run_dir) == []
    settings = load_settings(run_dir)
    rows = []
    for authority in ("LT", "PL"):
        with open_ledger(ledger_url(settings, authority)) as ledger, ledger.engine.connect() as conn:
            rows += conn.execute(
                sa.select(ledger_records.c.kind, ledger_records.c.seller_key, ledger_records.c.content,
                          ledger_records.c.content_hash)
            ).all()  # fmt: skip
    sellers = {(kind, key): (text, h) for kind, key, text, h in rows if kind == "seller"}
    assert sorted(sellers) == sorted(put) == [("seller", "LT1"), ("seller", "PL1")]
    for key, content in put.items():
        # what the ledger records without a store: the canonical JSON of the content, and its hash
        assert sellers[key] == (canonical_json(content), content_hash(content))
        assert json.loads(sellers[key][0])["seller_id"] == key[1]
    assert {kind for kind, *_ in rows} == {"platform_operator", "seller"}


def test_a_failed_render_leaves_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = decided(tmp_path, routing="jurisdiction")
    seen: list[list[str]] = []

    def fails(*args: Any, **kwargs: Any) -> Any:
        list(args[0])  # the sellers are read into the store
        seen.append(leftovers(run_dir))
        raise RuntimeError("the plan failed")

    monkeypatch.setattr(render_stage, "plan_filing_sorted", fails)
    with pytest.raises(RuntimeError, match="the plan failed"):
        pipeline.render(run_dir, "PL")
    assert seen == [[".seller_contents-PL.tmp"]]  # there while the authority renders
    assert leftovers(run_dir) == []
    with pytest.raises(RuntimeError, match="the plan failed"):
        pipeline.render(run_dir)
    assert seen[1:] == [[".seller_contents-LT.tmp"]]
    assert leftovers(run_dir) == []


def test_a_first_filings_records_are_read_back_from_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first filing (each preview ledger is the run's own): each authority's message is planned
    into the store's file (PlannedRecordsSink), and the ledger records its records as read back,
    in order."""
    run_dir = decided(tmp_path, routing="jurisdiction")
    monkeypatch.setattr(contents, "SPILL_AT", 0)  # every record to the file, not held in memory
    views: list[list[tuple[str | None, str, str]]] = []
    done = PlannedRecordsSink.done

    def spy(self: PlannedRecordsSink) -> Any:
        view = done(self)
        assert isinstance(view, PlannedRecords)
        views.append([(r.seller_key, r.doc_type, r.doc_ref_id) for r in view])
        return view

    monkeypatch.setattr(PlannedRecordsSink, "done", spy)
    pipeline.render(run_dir)
    settings = load_settings(run_dir)
    recorded = []
    for authority in ("LT", "PL"):
        with open_ledger(ledger_url(settings, authority)) as ledger, ledger.engine.connect() as conn:
            r = ledger_records.c
            rows = conn.execute(sa.select(r.seller_key, r.doc_type, r.doc_ref_id).order_by(r.position)).all()
            recorded.append([tuple(row) for row in rows])
    assert [[(key, doc_type) for key, doc_type, _ in v] for v in views] == [
        [(None, "new"), ("LT1", "new")],
        [(None, "new"), ("PL1", "new")],
    ]
    assert views == recorded
