"""A statement's page on disk and its line of the feed: the one function that renders, writes
and hashes a page, whichever process runs it (:mod:`reporting.statements.feed` itself, or the
workers of :mod:`reporting.statements.writer`)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from reporting.private import FILE_MODE
from reporting.statements.locale import Language, formatter
from reporting.statements.page import render

STATEMENTS_DIR = "statements"
#: pages per folder at most: the first two hex digits of the id name the folder (256 folders)
SHARD_CHARS = 2


def page_line(out_dir: str, statement: dict[str, Any], language: Language, operator: str) -> str:
    """Render and write the page of ``statement`` under ``out_dir`` (its shard folder exists);
    returns the statement's line of the feed, with ``html_path`` and ``sha256``."""
    html = render(statement, language, formatter(language.locale), operator).encode()
    sid = statement["statement_id"]
    relative = f"{STATEMENTS_DIR}/{sid[:SHARD_CHARS]}/{sid}.html"
    write_page(f"{out_dir}/{relative}", html)
    statement["html_path"] = relative
    statement["sha256"] = hashlib.sha256(html).hexdigest()
    return json.dumps(statement, ensure_ascii=False, separators=(",", ":")) + "\n"


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
    tmp = f"{path}.{os.getpid()}.tmp"
    head, _sep, name = tmp.rpartition("/")
    tmp = f"{head}/.{name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        _write_fd(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)
