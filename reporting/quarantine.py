"""Quarantine: a seller that cannot be reported correctly is set aside with its reasons.

It is not dropped (its decision is ``quarantined:<rule>``, its figures stay in the explanation
and in the reconciliation) and it does not stop the run for everyone else. A production run
fails, nothing published, when more sellers are quarantined than ``[quality] max_quarantined``
allows (default 0); a test run goes on and says how many were quarantined and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from reporting.errors import DataError
from reporting.findings import Finding
from reporting.settings import RunSettings
from reporting.vocabulary import PROD

SCHEMA = pa.schema(
    [
        ("seller_id", pa.string()),
        ("rule", pa.string()),
        ("table", pa.string()),
        ("key", pa.string()),
        ("message", pa.string()),
    ]
)


def write_quarantine(path: Path, findings: Iterable[Finding]) -> int:
    """Write the findings of quarantined sellers; returns how many sellers they concern."""
    rows = sorted(
        (
            {"seller_id": f.seller_id, "rule": f.rule, "table": f.table, "key": f.key, "message": f.message}
            for f in findings
            if f.seller_id is not None
        ),
        key=lambda r: (r["seller_id"], r["rule"], r["key"]),
    )
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp)
    tmp.replace(path)
    return len({r["seller_id"] for r in rows})


def read_quarantine(*paths: Path) -> dict[str, str]:
    """seller_id -> the first rule that quarantined it (stable: rules sorted by name)."""
    out: dict[str, str] = {}
    for path in paths:
        if path.is_file():
            for row in pq.read_table(path, columns=["seller_id", "rule"]).to_pylist():
                current = out.get(row["seller_id"])
                if current is None or row["rule"] < current:
                    out[row["seller_id"]] = row["rule"]
    return out


def enforce_quarantine_policy(settings: RunSettings, findings: list[Finding]) -> None:
    sellers = {f.seller_id for f in findings if f.seller_id is not None}
    limit = settings.config.max_quarantined
    if settings.environment == PROD and len(sellers) > limit:
        raise DataError(
            findings,
            headline=f"{len(sellers)} seller(s) quarantined, and a production run accepts {limit} "
            "([quality] max_quarantined)",
        )


def read_findings(path: Path) -> list[Finding]:
    """The findings written by :func:`write_quarantine` (none when the file is absent)."""
    if not path.is_file():
        return []
    return [
        Finding(rule=r["rule"], table=r["table"], key=r["key"], message=r["message"], seller_id=r["seller_id"])
        for r in pq.read_table(path).to_pylist()
    ]


def quarantine_findings(settings: RunSettings) -> list[Finding]:
    """The findings of the sellers quarantined by the extract checks of this run."""
    return read_findings(settings.run_path / "extract" / "quarantine_extract.parquet")
