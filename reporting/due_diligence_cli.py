"""``dac7 due-diligence``: the due-diligence cycle from the command line.

    dac7 due-diligence run --out DIR [--date D] [--config F] [--source URL] [--ledger URL]
                           [--staging DIR] [--operator ID,...]
    dac7 due-diligence mark --file F [--config F] [--ledger URL]
    dac7 due-diligence show --seller ID [--operator ID] [--config F] [--ledger URL]
    dac7 due-diligence unlock [--operator ID] [--ledger URL]

``run`` computes the day's state and writes ``DIR/due_diligence/actions.jsonl`` for each operator
(a further operator of a group: ``DIR/operators/<ID>/due_diligence/actions.jsonl``); the day is
``--date``, by default today in ``[reporting] timezone``. ``mark`` applies the platform's report of
the actions it performed (JSON Lines: ``seller_id``, ``action``, ``at``, optional ``operator_id``
and ``reference``): every line or none; a bad line names the file, the line and the field, and
exits 2. ``show`` prints a seller's state and history (items and states, never a value).
``unlock`` removes the due-diligence lock a run that died left behind (SQLite). Nothing prints
personal data.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from reporting.vocabulary import DEFAULT_OPERATOR

if TYPE_CHECKING:
    from reporting.config import Config


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``due-diligence`` group of the ``dac7`` command."""
    from reporting.ledger.url import add_ledger_arguments

    g = sub.add_parser(
        "due-diligence", help="the due-diligence cycle: the actions due each day, and what the platform sent"
    )
    dsub = g.add_subparsers(dest="dd_command", required=True)
    r = dsub.add_parser("run", help="compute the day's due diligence and write the feed of the actions due")
    add_ledger_arguments(r)
    r.add_argument(
        "--source",
        default=os.environ.get("DAC7_SOURCE_URL"),
        help="SQLAlchemy URL of the source database (default: $DAC7_SOURCE_URL, else [source] url)",
    )
    r.add_argument(
        "--date", type=_date, help="the day whose actions to compute (default: today in [reporting] timezone)"
    )
    r.add_argument("--out", required=True, help="output directory (the feed goes to DIR/due_diligence/actions.jsonl)")
    r.add_argument(
        "--staging",
        default=os.environ.get("DAC7_STAGING_DIR"),
        help="folder for the run's work files (default: $DAC7_STAGING_DIR, else .dac7/staging)",
    )
    r.add_argument(
        "--operator",
        type=_ids,
        dest="operators",
        metavar="ID[,ID...]",
        help="a group ([operators.ID] in the configuration): these operators only ('default' is [operator]; "
        "default: every operator)",
    )
    m = dsub.add_parser("mark", help="record the actions the platform performed (its report, JSON Lines)")
    m.add_argument(
        "--file",
        required=True,
        help="the report: one JSON object per line with seller_id, action, at (ISO 8601 with offset), and "
        "optionally operator_id and reference",
    )
    add_ledger_arguments(m)
    s = dsub.add_parser("show", help="a seller's due-diligence state and history (no personal data)")
    s.add_argument("--seller", required=True, help="the seller's id")
    s.add_argument("--operator", default=DEFAULT_OPERATOR, help="the operator of a group (default: default)")
    add_ledger_arguments(s)
    u = dsub.add_parser("unlock", help="remove the due-diligence lock a run that died left behind (SQLite)")
    u.add_argument("--operator", default=DEFAULT_OPERATOR, help="the operator of a group (default: default)")
    add_ledger_arguments(u)


def run(args: argparse.Namespace, ledger_url: Callable[[argparse.Namespace], str]) -> int:
    if args.dd_command == "run":
        return _run(args, ledger_url(args))
    if args.dd_command == "mark":
        return _mark(args, ledger_url(args))
    if args.dd_command == "show":
        return _show(args, ledger_url(args))
    return _unlock(args, ledger_url(args))


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _config(args: argparse.Namespace) -> Config:
    from reporting.config import load_config

    return load_config(args.config or "dac7.toml")


def _run(args: argparse.Namespace, url: str) -> int:
    from reporting.due_diligence import run_due_diligence
    from reporting.errors import ConfigError
    from reporting.ledger import open_ledger

    config = _config(args)
    source = args.source or config.source
    if not source:
        raise ConfigError("no source database: give --source, DAC7_SOURCE_URL or [source] url")
    zone = ZoneInfo(config.reporting.timezone)
    now = datetime.now(UTC)
    today = args.date or now.astimezone(zone).date()
    operators = args.operators or list(config.operator_ids)
    unknown = [o for o in operators if o not in config.operator_ids]
    if unknown:
        raise ConfigError(
            f"--operator {','.join(unknown)}: not configured; the operators are {', '.join(config.operator_ids)}"
        )
    staging = Path(args.staging or ".dac7/staging")
    with open_ledger(url) as ledger:
        for operator_id in operators:
            result = run_due_diligence(
                config,
                source_url=source,
                ledger=ledger,
                today=today,
                out_dir=Path(args.out),
                work_root=staging,
                now=now,
                run_id=f"cli-{uuid.uuid4()}",
                operator_id=operator_id,
            )
            actions = ", ".join(f"{n} {a}" for a, n in sorted(result.actions.items())) or "none"
            print(
                f"{operator_id} {today}: {result.sellers} seller(s), {result.in_scope} in scope; {result.changed} "
                f"state(s) changed, {result.events} event(s); actions due: {actions}; feed {result.feed}"
            )
    return 0


def _mark(args: argparse.Namespace, url: str) -> int:
    from reporting.due_diligence import mark_actions
    from reporting.ledger import DueDiligenceReportError, open_ledger

    path = Path(args.file)
    if not path.is_file():
        print(f"dac7: {path.name}: no such report", file=sys.stderr)
        return 2
    zone = ZoneInfo(_config(args).reporting.timezone)
    with open_ledger(url, create=False) as ledger:
        try:
            outcome = mark_actions(ledger, path, now=datetime.now(UTC), zone=zone)
        except DueDiligenceReportError as exc:
            print(f"dac7: {exc}", file=sys.stderr)
            return 2
    actions = ", ".join(f"{n} {a}" for a, n in sorted(outcome.actions.items())) or "none new"
    late = f"; {outcome.late_measures} measure(s) after day 180 (late)" if outcome.late_measures else ""
    print(
        f"{path.name}: {outcome.lines} line(s); {outcome.recorded} action(s) recorded ({actions}); "
        f"{outcome.repeated} already recorded{late}"
    )
    return 0


def _show(args: argparse.Namespace, url: str) -> int:
    from reporting.due_diligence import seller_history, seller_state
    from reporting.ledger import open_ledger

    with open_ledger(url, create=False) as ledger:
        state = seller_state(ledger, args.seller, args.operator)
        if state is None:
            print(f"no due-diligence state for seller {args.seller} of operator {args.operator}")
            return 1
        c = state.cycle
        print(f"seller {state.seller_id} ({state.seller_type or 'type unknown'}, {state.country or 'country unknown'})")
        print(f"scope: {state.scope} (period {state.period}); first seen {state.first_seen}, updated {state.updated}")
        for item, value in state.items.items():
            checked = f" (checked {state.checked[item]})" if state.checked[item] else ""
            print(f"  {item:<24} {value}{checked}")
        print(f"lacks: {', '.join(c.needs) or 'nothing'}")
        steps = [
            ("notice sent", c.notice_on),
            ("requested", c.requested_on),
            ("reminder 1", c.reminder_1_on),
            ("reminder 2", c.reminder_2_on),
            (f"measure {c.measure}", c.measure_on),
            ("release due", c.release_due),
        ]
        print("cycle: " + (", ".join(f"{k} {v}" for k, v in steps if v) or "none open") + f"; {c.cycles} closed")
        for e in seller_history(ledger, args.seller, args.operator):
            print(f"{e.at:%Y-%m-%d %H:%M:%S} UTC  {e.kind:<18} {e.detail}  [{e.source}]")
    return 0


def _unlock(args: argparse.Namespace, url: str) -> int:
    from reporting.ledger import open_ledger
    from reporting.ledger.db import DUE_DILIGENCE_LOCK

    with open_ledger(url, create=False) as ledger:
        held = ledger.break_lock(*DUE_DILIGENCE_LOCK, args.operator)
    what = f"the due-diligence lock of operator {args.operator}"
    print(f"removed {what}, {held.describe()}" if held else f"{what} is not held")
    return 0
