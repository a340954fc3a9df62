"""A statement as PDF, on demand (``dac7 statements pdf``): one seller or a list, never every
seller of a run. WeasyPrint (the optional extra ``pdf``) lays out the statement's own HTML page,
in-process and without a browser; the page is self-contained, so nothing is fetched."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from reporting.errors import ConfigError
from reporting.private import FILE_MODE, private_dirs


def write_pdf(html_file: Path, target: Path) -> Path:
    """The page ``html_file`` as the PDF ``target`` (0600, written to a temporary name and renamed)."""
    try:
        from weasyprint import HTML
    except ImportError:  # pragma: no cover - the extra is installed by make venv
        raise ConfigError(
            "a PDF needs the optional extra 'pdf' (WeasyPrint): pip install 'dac7-reporting[pdf]'"
        ) from None
    private_dirs(target.parent)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)  # this process's own name
    try:
        with os.fdopen(fd, "wb") as out:
            HTML(filename=str(html_file), base_url=None).write_pdf(out)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
