"""A statement's page on disk and its line of the feed: the one function that renders, writes
and hashes a page, whichever process runs it (:mod:`reporting.statements.feed` itself, or the
workers of :mod:`reporting.statements.writer`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from typing import Any

from reporting.private import FILE_MODE
from reporting.statements.locale import Language, formatter
from reporting.statements.page import render
from reporting.vocabulary import STATEMENTS_DIR as STATEMENTS_DIR

#: pages per folder at most: the first two hex digits of the id name the folder (256 folders)
SHARD_CHARS = 2


def page_line(
    out_dir: str,
    statement: dict[str, Any],
    language: Language,
    operator: str,
    contact: str | None = None,
    recorded: tuple[str, str | None] | None = None,
) -> tuple[dict[str, Any], str]:
    """Render the page of ``statement`` and write it under ``out_dir`` (its shard folder exists);
    returns the statement's object of the feed, with ``html_path`` and ``sha256`` (``statement``
    itself, or the ledger's record kept over this build's), and its line.

    ``recorded``: what the ledger recorded of the statement (its ``sha256`` and content, None once
    erased), None for a statement never recorded. A recorded statement is a notice given: its
    page is never written over with other bytes (only written again, when gone or cut short,
    where this build made the very bytes recorded) and its line is the recorded object (see :func:`as_recorded`)."""
    html = render(statement, language, formatter(language.locale), operator, contact).encode()
    sid = statement["statement_id"]
    relative = f"{STATEMENTS_DIR}/{sid[:SHARD_CHARS]}/{sid}.html"
    path = f"{out_dir}/{relative}"
    statement["html_path"] = relative
    statement["sha256"] = hashlib.sha256(html).hexdigest()
    line = statement
    if recorded is None:
        write_page(path, html)
    else:
        line = as_recorded(statement, *recorded)
        if line is statement:
            # the very bytes recorded: a page that holds them is left alone; one that is gone, or
            # is the half page of a run stopped while creating it, is written again
            write_page(path, html)
    return line, json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


def canonical(obj: Any) -> str:
    """The canonical JSON of a feed object (sorted keys, no spaces, UTF-8 characters kept): the
    content the ledger records of a statement (``reporting.ledger.model.canonical_json``)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def as_recorded(statement: dict[str, Any], sha256: str, content: str | None) -> dict[str, Any]:
    """The feed object of a statement the ledger holds: ``statement`` itself when this build made
    the very page and object recorded, else the recorded object (its page is left as it is; once
    the content is erased, PStTG § 24(3), this object with the recorded ``sha256``)."""
    if content is None:
        return statement if statement["sha256"] == sha256 else {**statement, "sha256": sha256}
    if statement["sha256"] == sha256 and canonical(statement) == content:
        return statement
    kept: dict[str, Any] = _ordered(json.loads(content), statement)
    return kept


def _ordered(value: Any, like: Any) -> Any:
    """``value`` with its keys in the order of ``like`` (the recorded JSON has them sorted): the
    feed line of a kept statement is the very line written when it was recorded."""
    if isinstance(value, dict) and isinstance(like, dict):
        keys = [k for k in like if k in value] + [k for k in value if k not in like]
        return {k: _ordered(value[k], like.get(k)) for k in keys}
    if isinstance(value, list) and isinstance(like, list):
        return [_ordered(v, like[i] if i < len(like) else None) for i, v in enumerate(value)]
    return value


def write_page(path: str, data: bytes) -> None:
    """``data`` to ``path``, 0600 from its first byte. A new page is created under its own name
    (``O_EXCL``: one open, one write, no rename); were the run to stop in the middle of it, the
    half page is named by no feed (the feed is renamed into place last, and no earlier feed named
    a page that did not exist), and the next run finds it different and replaces it. A page that
    exists already is replaced through a temporary name, unless it holds these bytes (the
    statements written again): renaming over a file the disk holds makes ext4 write the new one
    at once (its ``auto_da_alloc``), a millisecond a page."""
    try:
        fd = os.open(path, _CREATE, FILE_MODE)
    except FileExistsError:
        _replace_page(path, data)
        return
    try:
        _write_fd(fd, data)
    finally:
        os.close(fd)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _replace_page(path: str, data: bytes) -> None:
    with open(path, "rb") as f:
        if f.read(len(data) + 1) == data:
            return
    head, _sep, name = path.rpartition("/")
    tmp = f"{head}/.{name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"  # unique to this process
    fd = os.open(tmp, _CREATE, FILE_MODE)
    try:
        try:
            _write_fd(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
