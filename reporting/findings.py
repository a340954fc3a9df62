"""Problems as data: every check returns findings, so that one run reports every problem."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    #: a note that changes nothing in the filing (an input the rules do not use)
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in the input or the output.

    ``key`` is the row key (a seller_id, transaction_id, refund_id, currency/date ...), never
    personal data. ``rule`` is a stable code such as ``fx.missing_rate``.
    """

    rule: str
    table: str
    key: str
    message: str
    severity: Severity = Severity.ERROR
    seller_id: str | None = None

    def describe(self) -> str:
        return f"[{self.rule}] {self.table} {self.key}: {self.message}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "rule": self.rule,
            "severity": str(self.severity),
            "table": self.table,
            "key": self.key,
            "seller_id": self.seller_id,
            "message": self.message,
        }
