"""Which period, stage and authority a log line belongs to.

Every stage of :mod:`reporting.pipeline` runs inside :func:`stage_context`; the log records of
the ``reporting`` loggers emitted meanwhile (in that thread or task: the context is a
:class:`~contextvars.ContextVar`) carry three attributes, added by :class:`StageContextFilter`:

- ``dac7_period``: the reporting year (``"2025"``);
- ``dac7_stage``: ``extract``, ``aggregate``, ``rules``, ``plan``, ``render``, ``validate``,
  ``publish`` or ``finalize`` (``prepare`` too);
- ``dac7_authority``: the receiving member state (``"DE"``), ``None`` for a stage of all of them;
- ``dac7_operator``: in a group's run, the operator whose run it is (``"de_gmbh"``; ``None`` for a
  single operator's run);

and ``dac7_prefix``, the same as text for people: ``"[2025 render DE] "`` (``""`` outside a stage),
``"[2025 render de_gmbh DE] "`` in a group's run.

Where they show: a handler whose format names ``%(dac7_prefix)s`` (the CLI's :data:`CLI_FORMAT`)
or another ``dac7_`` attribute renders them itself. Any other handler gets the prefix in the
message text, because that is all that survives some pipelines: Airflow 3 sends stdlib records
through structlog's ``ProcessorFormatter``, which keeps the message, the level and the logger name
and drops every other attribute of a record, so a task log line reads
``{"event": "[2025 render DE] render year=2025 authority=DE: ...", "logger": "reporting.stages.render", ...}``.

The context holds codes only (a year, a stage name, a country code): never anything of a seller.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

#: The plain-text format of the CLI: the context as a prefix of the message.
CLI_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(dac7_prefix)s%(message)s"
#: The loggers whose records carry the context: the package's own.
LOGGER = "reporting"

ATTRIBUTES = ("dac7_stage", "dac7_period", "dac7_authority", "dac7_operator", "dac7_prefix")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class StageContext:
    stage: str
    period: str
    authority: str | None = None
    operator: str | None = None

    @property
    def tag(self) -> str:
        """``[2025 render DE]``; ``[2025 extract]`` for a stage of every authority; ``[2025 render
        de_gmbh DE]`` for an operator of a group."""
        return "[" + " ".join(p for p in (self.period, self.stage, self.operator, self.authority) if p) + "]"


_CURRENT: ContextVar[StageContext | None] = ContextVar("dac7_stage_context", default=None)


def _code(value: object) -> str:
    """A context value as a short code: letters, digits, ``_ . -`` (nothing else reaches a log)."""
    return _SAFE.sub("_", str(value))[:40]


@contextmanager
def stage_context(
    *, stage: str, period: int | str, authority: str | None = None, operator: str | None = None
) -> Iterator[StageContext]:
    """Tag the ``reporting`` log records emitted inside the block with the stage, the period
    and the authority. Nested blocks replace the outer context and restore it on exit; other
    threads (and asyncio tasks started before) keep their own. Installs the filter on the root
    logger's handlers the first time (:func:`install`)."""
    install()
    ctx = StageContext(
        _code(stage), _code(period), _code(authority) if authority else None, _code(operator) if operator else None
    )
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)


def current() -> StageContext | None:
    """The context of the running stage, ``None`` outside a stage."""
    return _CURRENT.get()


def _ours(name: str) -> bool:
    return name == LOGGER or name.startswith(LOGGER + ".")


class StageContextFilter(logging.Filter):
    """Adds ``dac7_stage``, ``dac7_period``, ``dac7_authority`` and ``dac7_prefix`` to every
    record a handler sees (``None`` and ``""`` for records of other loggers and outside a stage,
    so that a format naming them never fails). With ``in_message``, the prefix goes into the
    message text instead, for a handler that would drop the attributes; then ``dac7_prefix``
    becomes ``""``, so that no handler shows it twice. Never filters a record out."""

    def __init__(self, *, in_message: bool = False) -> None:
        super().__init__()
        self.in_message = in_message

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        if "dac7_prefix" not in attrs:  # the first handler to see the record fixes its context
            ctx = current() if _ours(record.name) else None
            attrs["dac7_stage"] = ctx.stage if ctx else None
            attrs["dac7_period"] = ctx.period if ctx else None
            attrs["dac7_authority"] = ctx.authority if ctx else None
            attrs["dac7_operator"] = ctx.operator if ctx else None
            attrs["dac7_prefix"] = f"{ctx.tag} " if ctx else ""
        if self.in_message and attrs["dac7_prefix"]:
            prefix = attrs["dac7_prefix"]
            record.msg = f"{prefix.replace('%', '%%') if record.args else prefix}{record.msg}"
            attrs["dac7_prefix"] = ""
        return True


def shows_context(handler: logging.Handler) -> bool:
    """Whether the handler's format renders the context attributes itself."""
    fmt = getattr(getattr(handler.formatter, "_style", None), "_fmt", None) or ""
    return any(name in fmt for name in ATTRIBUTES)


def install(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Put a :class:`StageContextFilter` on each handler (default: the root logger's, where the
    ``reporting`` loggers' records end up), once: the context as attributes for a handler that
    shows them (:func:`shows_context`), in the message text for any other. Records of every
    ``reporting.*`` logger pass through these handlers, whenever the logger was created."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, StageContextFilter) for f in handler.filters):
            handler.addFilter(StageContextFilter(in_message=not shows_context(handler)))


def configure_cli_logging(level: int) -> None:
    """The CLI's logging: plain text on stderr, each ``reporting`` line prefixed with its
    context (``... INFO reporting.stages.render: [2025 render DE] render year=2025 ...``)."""
    logging.basicConfig(level=level, format=CLI_FORMAT)
    install()
