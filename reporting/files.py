"""The digest of a file: what the render records for each message, what publish checks before it
copies one, and what the Airflow view logs for each download.

A leaf: standard library only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The sha256 of the file at ``path`` (hex), read in chunks of 1 MiB."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
