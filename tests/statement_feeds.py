"""Statements feeds for tests: a filing recorded in a ledger and the statements a run would write
for it, following the contract of ``statements/statements.jsonl`` exactly (one JSON object per
line; pages owner-only under ``<DIR>/statements/``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import ledger_filing
from ledger_filing import Filer

from reporting.ledger import SELLER, Ledger
from reporting.ledger.model import RecordKey
from reporting.vocabulary import DEFAULT_OPERATOR


def current(sellers: dict[str, int]) -> dict[RecordKey, tuple[str, Any]]:
    """What a run would file: the PlatformOperator and one record per seller (``v`` its figure)."""
    return ledger_filing.current(sellers=sellers)


class Run:
    """A filing of sellers in the ledger, and the statements a run would write for it."""

    def __init__(
        self,
        ledger: Ledger,
        out: Path,
        sellers: dict[str, int],
        year: int = 2025,
        environment: str = "test",
        authority: str = "DE",
        operator_id: str = DEFAULT_OPERATOR,
    ) -> None:
        self.filer = Filer(ledger, environment=environment, authority=authority, year=year, operator_id=operator_id)
        self.out = out
        self.year, self.environment, self.authority = year, environment, authority
        self.refs = self.filer.file(current(sellers))
        self.docs = self.doc_ref_ids(self.refs[0])

    def doc_ref_ids(self, ref: str) -> dict[str, str]:
        return {r.seller_key: r.doc_ref_id for r in self.filer.ledger.records(ref) if r.kind == SELLER}  # type: ignore[misc]

    def statement(
        self,
        seller: str,
        statement_id: str,
        *,
        kind: str = "initial",
        replaces: str | None = None,
        ref: str | None = None,
        page: str = "<html><body>statement</body></html>",
    ) -> dict[str, Any]:
        ref = ref or self.refs[0]
        html = f"statements/{statement_id[:2]}/{statement_id}.html"
        path = self.out / str(self.year) / html
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(page, encoding="utf-8")
        os.chmod(path, 0o600)
        return {
            "statement_id": statement_id,
            "replaces": replaces,
            "kind": kind,
            "seller_id": seller,
            "year": self.year,
            "environment": self.environment,
            "language": "de-DE",
            "identity": {
                "names": [{"first": "Ona", "last": "Example"}],
                "tins": [{"tin": "12345678901", "country": "DE"}],
            },
            "filed_with": {
                "country": self.authority,
                "message_ref_id": ref,
                "doc_ref_id": (self.docs if ref == self.refs[0] else self.doc_ref_ids(ref))[seller],
            },
            "receiving_states": [{"country": "DE", "reason": "residence"}],
            "currency": "EUR",
            "activities": [
                {
                    "activity": "sale_of_goods",
                    "quarters": {
                        q: {"consideration": 100, "number_of_activities": 1, "fees": 5, "taxes": 0}
                        for q in ("Q1", "Q2", "Q3", "Q4")
                    },
                }
            ],
            "html_path": html,
            "sha256": hashlib.sha256(page.encode()).hexdigest(),
        }

    def feed(self, *statements: dict[str, Any], name: str = "statements.jsonl") -> Path:
        path = self.out / str(self.year) / "statements" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(s) + "\n" for s in statements), encoding="utf-8")
        return path
