"""Filings recorded in a ledger the way the pipeline records them, for the ledger's and the
statements' tests: what a run would file (``current``), a ``Filer`` that plans, records and
publishes one period and authority, and ``send``, which makes a published message filed."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

from reporting.ledger import PO_KEY, SELLER, Ledger, PlannedMessage, content_hash, plan_filing
from reporting.ledger.model import RecordKey
from reporting.vocabulary import DEFAULT_OPERATOR


def current(po: int = 1, sellers: dict[str, int] | None = None) -> dict[RecordKey, tuple[str, Any]]:
    out = {PO_KEY: item({"operator": "Demo Market", "v": po})}
    for seller, v in (sellers or {}).items():
        out[(SELLER, seller)] = item({"seller": seller, "name": "Ona Example", "v": v})
    return out


def item(content: dict[str, Any]) -> tuple[str, Any]:
    return content_hash(content), content


class Filer:
    """Plans, records and publishes like the pipeline will: one period and authority, of one
    operator of a group (``operator_id``; the default operator unless named)."""

    def __init__(
        self,
        ledger: Ledger,
        environment: str = "test",
        authority: str = "DE",
        year: int = 2025,
        *,
        operator_id: str = DEFAULT_OPERATOR,
    ) -> None:
        self.ledger, self.environment, self.authority, self.year = ledger, environment, authority, year
        self.operator_id = operator_id
        self.run_id = str(uuid.uuid4())
        self.files = itertools.count(1)

    def new_id(self, purpose: str) -> str:
        return f"{self.authority}{self.year}-{uuid.uuid4().hex}"

    def plan(self, cur: dict[RecordKey, tuple[str, Any]], **kw: Any) -> list[PlannedMessage]:
        kw.setdefault("profile_expects_nil", False)
        live = self.ledger.live_records(self.environment, self.authority, self.year, operator_id=self.operator_id)
        messages = plan_filing(
            cur,
            live,
            new_id=self.new_id,
            environment=self.environment,
            authority=self.authority,
            year=self.year,
            **kw,
        )
        problems = self.ledger.problems(
            messages,
            environment=self.environment,
            authority=self.authority,
            year=self.year,
            operator_id=self.operator_id,
        )
        assert problems == []
        return messages

    def record(self, messages: list[PlannedMessage], run_id: str | None = None) -> list[str]:
        refs = []
        for m in messages:
            ref = f"{self.authority}{self.year}{self.authority}{uuid.uuid4().hex}"
            self.ledger.record_message(
                m,
                message_ref_id=ref,
                authority=self.authority,
                operator="LT304567891",
                year=self.year,
                environment=self.environment,
                file_name=f"{self.authority}/{ref}.xml",
                sha256="0" * 64,
                run_id=run_id or self.run_id,
                transfer_id=f"T-{ref}",
                triggered_by="tester",
                params={"year": self.year},
                operator_id=self.operator_id,
            )
            refs.append(ref)
        return refs

    def file(self, cur: dict[RecordKey, tuple[str, Any]], **kw: Any) -> list[str]:
        refs = self.record(self.plan(cur, **kw))
        for ref in refs:
            self.ledger.mark_published(ref)
        return refs

    def live(self) -> dict[RecordKey, Any]:
        return self.ledger.live_records(self.environment, self.authority, self.year, operator_id=self.operator_id)


def send(ledger: Ledger, ref: str, at: datetime | None = None, *, actor: str = "ana") -> None:
    """A published message goes its authority's way, which makes it filed (filed means sent:
    ``Ledger.filed_times``): transmitted through a DIP transfer for DE, else marked uploaded from
    the outbox; at ``at`` (naive UTC; None: now)."""
    if ledger.message(ref).authority == "DE":
        ticket = f"T-{ref[-6:]}"
        ledger.record_transmission(ref, event="started", channel="dip", actor=actor, ticket=ticket, at=at)
        ledger.record_transmission(ref, event="transmitted", channel="dip", actor=actor, ticket=ticket, at=at)
    else:
        ledger.record_transmission(ref, event="uploaded", channel="outbox", actor=actor, at=at)
