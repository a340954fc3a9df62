"""What stops a run, as one exception hierarchy.

Row-level problems are data (:class:`reporting.findings.Finding`); an exception is raised only
for what must stop a run. Messages name the table, the row key and the rule, never personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reporting.findings import Finding


class ReportingError(Exception):
    """Base of every error that stops a DAC7 run."""


class PermanentError(ReportingError):
    """An error that a retry cannot fix: the input or the configuration must change first."""


class ConfigError(PermanentError):
    """The configuration file is missing, malformed or incomplete."""


class SourceError(ReportingError):
    """The source database could not be read (a retry may help: a lost connection, a
    concurrent load that changed the counts)."""


class SourceContractError(SourceError, PermanentError):
    """The source database does not follow the source contract (a missing table or column)."""


class XmlValidationError(PermanentError):
    """A rendered file does not validate against its schema; nothing was published."""


class DataError(PermanentError):
    """The input data breaks one or more rules; every finding is listed."""

    def __init__(self, findings: Sequence[Finding], *, limit: int = 50, headline: str | None = None) -> None:
        self.findings = list(findings)
        lines = [f.describe() for f in self.findings[:limit]]
        more = len(self.findings) - limit
        if more > 0:
            lines.append(f"... and {more} more")
        head = headline or f"{len(self.findings)} data error(s)"
        super().__init__(f"{head}; nothing was published:\n  " + "\n  ".join(lines))
