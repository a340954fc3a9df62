"""The feed of the actions due: ``<out>/due_diligence/actions.jsonl`` (a further operator of a
group: ``<out>/operators/<ID>/due_diligence/actions.jsonl``), a public contract.

One JSON object per line, per action due on the run's day, keys in the order of
:data:`reporting.diligence_cycle.FEED_KEYS` (keys are added, never renamed)::

    {"seller_id":"S-1001","operator_id":"default","action":"reminder_1","items_missing":["tin"],
     "items_invalid":[],"due_date":"2026-03-16","latest_date":"2026-08-26",
     "legal_basis":"PStTG § 23 sentence 1","date":"2026-03-16","request_date":"2026-03-02",
     "day":14,"overdue":false,"reaches_day_180":false,"measure":null}

- ``action``: ``pre_report_notice``, ``request``, ``reminder_1``, ``reminder_2``,
  ``withhold_payouts`` or ``close_account`` (the measure of ``[due_diligence] measure``),
  ``release``;
- ``items_missing``: the items the seller must (still) supply, missing or invalid; ``items_invalid``
  those among them whose value was found wrong;
- ``due_date``: the first day the action was due (it stays while the action waits);
  ``latest_date``: the last day the law leaves for it (see ``docs/guide/due-diligence.md``);
  ``overdue``: the run's day (``date``) is after it;
- ``request_date`` and ``day``: the original request of the cycle and the days since (its day is
  day 0); ``reaches_day_180``: a measure on or after its last day;
- ``measure``: for a release, the measure it lifts.

Sorted by seller id and the action's place in the cycle; the same state and day give the same
bytes. The file names sellers: it is created owner-only (0600) under a temporary name and renamed
into place. Nothing is sent to a seller from here.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from reporting.diligence_cycle import FEED_KEYS, LEGAL_BASIS
from reporting.private import FILE_MODE, private_dirs
from reporting.vocabulary import ACTIONS_FEED, DEFAULT_OPERATOR, DUE_DILIGENCE_DIR, OPERATORS_DIR

_COLUMNS = (
    "seller_id",
    "action",
    "items_missing",
    "items_invalid",
    "due_date",
    "latest_date",
    "date",
    "request_date",
    "day",
    "overdue",
    "reaches_day_180",
    "measure",
)


def feed_path(out_dir: Path, operator_id: str = DEFAULT_OPERATOR) -> Path:
    """Where an operator's feed lies in the output directory."""
    base = Path(out_dir) if operator_id == DEFAULT_OPERATOR else Path(out_dir) / OPERATORS_DIR / operator_id
    return base / DUE_DILIGENCE_DIR / ACTIONS_FEED


def feed_line(row: dict[str, Any], operator_id: str) -> str:
    """One line of the feed from a row of ``due_diligence_actions.sql`` (or a
    :meth:`reporting.diligence_cycle.DueAction.feed_object`)."""
    obj = {
        "seller_id": row["seller_id"],
        "operator_id": operator_id,
        "action": row["action"],
        "items_missing": list(row["items_missing"] or ()),
        "items_invalid": list(row["items_invalid"] or ()),
        "due_date": _day(row["due_date"]),
        "latest_date": _day(row["latest_date"]),
        "legal_basis": LEGAL_BASIS[row["action"]],
        "date": _day(row["date"]),
        "request_date": _day(row["request_date"]),
        "day": None if row["day"] is None else int(row["day"]),
        "overdue": bool(row["overdue"]),
        "reaches_day_180": bool(row["reaches_day_180"]),
        "measure": row["measure"],
    }
    assert tuple(obj) == FEED_KEYS
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _day(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def write_feed(con: duckdb.DuckDBPyConnection, target: Path, operator_id: str) -> str:
    """Write the ``actions`` table of the run's DuckDB to ``target`` (see the module); returns
    the sha256 of the file."""
    private_dirs(target.parent)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    digest = hashlib.sha256()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            cur = con.cursor()
            try:
                cur.execute(f"select {', '.join(_COLUMNS)} from actions order by seller_id, action_rank")
                while rows := cur.fetchmany(10_000):
                    for r in rows:
                        line = feed_line(dict(zip(_COLUMNS, r, strict=True)), operator_id)
                        out.write(line)
                        digest.update(line.encode("utf-8"))
            finally:
                cur.close()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def read_feed(path: Path) -> list[dict[str, Any]]:
    """The objects of a feed (tests, the platform's side): one per line."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
