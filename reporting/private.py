"""Files and folders that may hold personal data belong to their owner alone, from the first byte.

Every stage runs under :func:`owner_only` (umask 077): whatever creates a file inside it (our
code, DuckDB's ``COPY``, pyarrow, lxml, Great Expectations) creates it ``0600`` and a folder
``0700``, with no instant in which another user could open it. The helpers below give the same
modes explicitly, for code that also runs outside a stage.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
DIR_MODE = 0o700


@contextmanager
def owner_only() -> Iterator[None]:
    """Umask 077 for the block (restored after it): files are created 0600, folders 0700."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def private_dirs(path: str | Path) -> Path:
    """``path`` as a folder: every component that does not exist yet is created 0700 (an existing
    folder is left as it is: its owner chose its mode)."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            pass
        else:
            os.chmod(d, DIR_MODE)  # whatever the umask of the caller
    return path


def _new_private_file(dst: str | Path) -> BinaryIO:
    """A new file ``dst``, 0600 from its first byte, open for writing (refused if ``dst`` exists)."""
    return os.fdopen(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb")


def private_copy(src: str | Path, dst: str | Path) -> None:
    """Copy ``src`` to a new file ``dst`` created 0600 (refused if ``dst`` exists)."""
    with _new_private_file(dst) as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out, 1 << 20)


def private_copy_sha256(src: str | Path, dst: str | Path) -> str:
    """:func:`private_copy`, returning the sha256 (hex) of the bytes copied: what was read from
    ``src`` and written to ``dst``, in one reading of ``src`` (chunks of 1 MiB)."""
    h = hashlib.sha256()
    with _new_private_file(dst) as out, open(src, "rb") as inp:
        while chunk := inp.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()
