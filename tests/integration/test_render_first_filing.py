"""A first filing is written as its sellers are read, without the content store's round trip
(reporting.stages.render._first_filing): the same files and the same ledger rows as the render
over the content store, for a filing and for a preview (its authorities over the shared rows),
and the next run against that ledger (a correction and a new seller) plans and writes alike."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config

from reporting.ledger import open_ledger
from reporting.ledger.schema import messages as ledger_messages
from reporting.ledger.schema import records as ledger_records
from reporting.pipeline import run
from reporting.stages import render as render_stage

RUN_IDS = ("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002")
#: the publish stage's clock: the only columns that differ between two runs of the same input
CLOCK = {"published", "status_changed"}


def marketplace(second: bool) -> Marketplace:
    m = Marketplace()
    # ids whose order as text is not their order as numbers; the second run changes S2's sales
    # (a correction) and adds S11 (a new seller)
    for seller, country in (("S10", "LT"), ("S2", "LT"), ("S9", "PL"), ("s1", "LT"), *([("S11", "PL")] * second)):
        m.seller(seller, country=country)
        m.sales(seller, 40, (120_00 if second and seller == "S2" else 100_00))
    return m


def evidence(tmp_path: Path, routing: str) -> dict[str, Any]:
    """Every published XML file's sha256 and every ledger's rows, after a first run and a second
    one against the same ledger(s)."""
    tmp_path.mkdir()
    config = write_config(tmp_path / "dac7.toml", routing=routing)
    for n, run_id in enumerate(RUN_IDS):
        run(
            config_path=config,
            source_url=marketplace(second=n == 1).write(f"sqlite:///{tmp_path}/source-{n}.db"),
            year=2025,
            as_of=date(2026, 1, 31),
            timestamp=datetime(2026, 1, 15 + n, 10, tzinfo=UTC),
            out_dir=tmp_path / "out",
            staging_root=tmp_path / "st",
            ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
            run_id=run_id,
        )
    files = {
        str(p.relative_to(tmp_path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((tmp_path / "out").rglob("*.xml"))
    }
    rows: dict[str, list[Any]] = {}
    for path in sorted(tmp_path.rglob("*.sqlite3")):
        with open_ledger(f"sqlite:///{path}") as ledger, ledger.engine.connect() as conn:
            for table in (ledger_messages, ledger_records):
                cols = [c for c in table.c if c.name not in CLOCK]
                rows[f"{path.relative_to(tmp_path)}:{table.name}"] = [
                    tuple(r) for r in conn.execute(sa.select(*cols).order_by(table.c.id))
                ]
    return {"files": files, "rows": rows}


@pytest.mark.parametrize("routing", ["nexus", "jurisdiction"])
def test_a_first_filing_written_as_read_is_the_filing_over_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, routing: str
) -> None:
    taken: list[bool] = []
    first_filing = render_stage._first_filing

    def spy(*args: Any, **kwargs: Any) -> Any:
        out = first_filing(*args, **kwargs)
        taken.append(out is not None)
        return out

    with monkeypatch.context() as m:
        m.setattr(render_stage, "_first_filing", spy)
        fast = evidence(tmp_path / "fast", routing)
    with monkeypatch.context() as m:
        m.setattr(render_stage, "_first_filing", lambda *args, **kwargs: None)  # always the store
        stored = evidence(tmp_path / "stored", routing)
    assert fast == stored
    if routing == "jurisdiction":
        # a preview's ledgers are the run's own: each run's authorities (LT, PL) a first filing
        assert taken == [True, True, True, True]
        return
    assert taken == [True]  # the first run's; the second plans over the ledger's live records
    (ledger,) = [k.rsplit(":", 1)[0] for k in fast["rows"] if k.endswith("ledger_messages")]
    messages = fast["rows"][f"{ledger}:ledger_messages"]
    kind = ledger_messages.c.keys().index("message_type_indic")
    # a first filing, then a correction (S2) and the new seller (S11) against it
    assert [m[kind] for m in messages] == ["DPI401", "DPI402", "DPI401"]
    assert len(fast["files"]) == 3
    records = fast["rows"][f"{ledger}:ledger_records"]
    c = ledger_records.c.keys()
    first = [(r[c.index("seller_key")], r[c.index("doc_type")]) for r in records if r[c.index("message_id")] == 1]
    # in body order: the sellers by their ids as text
    assert first == [(None, "new"), ("S10", "new"), ("S2", "new"), ("S9", "new"), ("s1", "new")]
