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

import functools
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from reporting.diligence_cycle import FEED_KEYS, LEGAL_BASIS
from reporting.private import FILE_MODE, private_dirs
from reporting.source import sql_text
from reporting.vocabulary import ACTIONS_FEED, DEFAULT_OPERATOR, DUE_DILIGENCE_ACTIONS, DUE_DILIGENCE_DIR, OPERATORS_DIR

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


def feed_object(row: dict[str, Any], operator_id: str) -> dict[str, Any]:
    """The object of one line of the feed from a row of ``due_diligence_actions.sql`` (or a
    :meth:`reporting.diligence_cycle.DueAction.feed_object`): keys in :data:`FEED_KEYS` order."""
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
    return obj


def feed_line_reference(row: dict[str, Any], operator_id: str) -> str:
    """A line of the feed, as :func:`json.dumps` writes :func:`feed_object` (compact, UTF-8): the
    reference :func:`feed_line` is held to."""
    return json.dumps(feed_object(row, operator_id), ensure_ascii=False, separators=(",", ":")) + "\n"


def feed_line(row: dict[str, Any], operator_id: str) -> str:
    """One line of the feed: the bytes of :func:`feed_line_reference`, put together from its
    pieces (a million lines a run: the texts that come from the source, the seller's id, are the
    only ones encoded each time; the rest are our own words, dates and numbers)."""
    action = row["action"]
    return (
        '{"seller_id":'
        + json.dumps(row["seller_id"], ensure_ascii=False)
        + _head(operator_id, action)
        + _items(row["items_missing"])
        + ',"items_invalid":'
        + _items(row["items_invalid"])
        + ',"due_date":'
        + _quoted_day(row["due_date"])
        + ',"latest_date":'
        + _quoted_day(row["latest_date"])
        + _basis(action)
        + _quoted_day(row["date"])
        + ',"request_date":'
        + _quoted_day(row["request_date"])
        + ',"day":'
        + ("null" if row["day"] is None else str(int(row["day"])))
        + (',"overdue":true' if row["overdue"] else ',"overdue":false')
        + (',"reaches_day_180":true' if row["reaches_day_180"] else ',"reaches_day_180":false')
        + ',"measure":'
        + ("null" if row["measure"] is None else json.dumps(row["measure"]))
        + "}\n"
    )


@functools.cache
def _head(operator_id: str, action: str) -> str:
    return f',"operator_id":{json.dumps(operator_id)},"action":{json.dumps(action)},"items_missing":'


@functools.cache
def _basis(action: str) -> str:
    return f',"legal_basis":{json.dumps(LEGAL_BASIS[action], ensure_ascii=False)},"date":'


def _items(items: Any) -> str:
    return _item_list(tuple(items or ()))


@functools.cache
def _item_list(items: tuple[str, ...]) -> str:
    return json.dumps(list(items), separators=(",", ":"))


def _quoted_day(value: Any) -> str:
    return "null" if value is None else '"' + (value.isoformat() if isinstance(value, date) else str(value)) + '"'


def _day(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def write_feed(con: duckdb.DuckDBPyConnection, target: Path, operator_id: str) -> str:
    """Write the ``actions`` table of the run's DuckDB to ``target`` (see the module): the lines
    made by ``sql/due_diligence_feed.sql`` (its macros ``dd_json`` and ``dd_day`` defined on
    ``con``), streamed; returns the sha256 of the file."""
    private_dirs(target.parent)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    digest = hashlib.sha256()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            for lines in feed_lines(con, operator_id):
                chunk = ("\n".join(lines) + "\n").encode("utf-8")
                out.write(chunk)
                digest.update(chunk)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def feed_lines(con: duckdb.DuckDBPyConnection, operator_id: str, batch_rows: int = 50_000) -> Iterator[list[str]]:
    """The feed's lines (without their line ends) in order, a batch at a time, from the
    ``actions`` table by ``sql/due_diligence_feed.sql`` (a cursor of its own)."""
    params = {
        "operator_id": operator_id,
        "actions": list(DUE_DILIGENCE_ACTIONS),
        "bases": [json.dumps(LEGAL_BASIS[a], ensure_ascii=False) for a in DUE_DILIGENCE_ACTIONS],
    }
    cur = con.cursor()
    try:
        for batch in cur.sql(sql_text("due_diligence_feed.sql"), params=params).to_arrow_reader(batch_rows):
            yield batch.column(0).to_pylist()
    finally:
        cur.close()


def read_feed(path: Path) -> list[dict[str, Any]]:
    """The objects of a feed (tests, the platform's side): one per line."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
