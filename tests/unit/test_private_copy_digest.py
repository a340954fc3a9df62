"""``private.private_copy_sha256``: the copy, owner-only from its first byte, and the sha256 of
the bytes copied (what publish compares with the render's record instead of reading the file
twice more)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from reporting.files import file_sha256
from reporting.private import private_copy_sha256


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 17])
def test_the_digest_is_that_of_the_bytes_copied(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(data)
    previous = os.umask(0)
    try:
        digest = private_copy_sha256(src, dst)
    finally:
        os.umask(previous)
    assert digest == hashlib.sha256(data).hexdigest() == file_sha256(dst)
    assert dst.read_bytes() == data
    assert stat.S_IMODE(dst.stat().st_mode) == 0o600


def test_an_existing_target_is_refused(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        private_copy_sha256(src, dst)
    assert dst.read_bytes() == b"old"
