"""``dac7 statements mark-sent`` and ``dac7 statements list``: the delivery record of seller
statements from the command line (the ledger side: :mod:`reporting.ledger.statements`).

    dac7 statements mark-sent --file F [--ledger URL]
    dac7 statements list [--year Y] [--status S] [--environment test|prod] [--authority XX] [--ledger URL]

``mark-sent`` applies the platform's delivery report (CSV ``statement_id,time,status[,detail]``,
a JSON list of such objects, or JSON Lines): every line or none. A bad line (an unknown
statement, a time without offset, a time after now plus five minutes or before the statement was
recorded, a status other than sent or failed) names the file, the line and the rule, and exits 2.
It prints counts, never personal data.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from reporting.vocabulary import ENVIRONMENTS

STATUS_CHOICES = ("pending", "sent", "failed", "superseded")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``mark-sent`` and ``list`` in the ``statements`` group of the ``dac7`` command."""
    from reporting.ledger.url import add_ledger_arguments

    ms = sub.add_parser(
        "mark-sent",
        help="record the platform's delivery report of seller statements (sent or failed, and when)",
    )
    ms.add_argument(
        "--file",
        required=True,
        help="the delivery report: CSV with the header statement_id,time,status[,detail], a JSON list of "
        "objects with those keys, or JSON Lines",
    )
    add_ledger_arguments(ms)
    ls = sub.add_parser("list", help="seller statements and where their delivery stands")
    ls.add_argument("--year", type=int, help="only this reporting year")
    ls.add_argument("--status", choices=STATUS_CHOICES, help="only statements in this state")
    ls.add_argument("--environment", choices=ENVIRONMENTS, help="only test or production statements")
    ls.add_argument("--authority", help="only statements of filings with this country (e.g. DE)")
    add_ledger_arguments(ls)


def run(args: argparse.Namespace, ledger_url: Callable[[argparse.Namespace], str]) -> int | None:
    """Run ``mark-sent`` or ``list``; None for another subcommand of the group."""
    if args.statements_command == "mark-sent":
        return _mark_sent(args, ledger_url(args))
    if args.statements_command == "list":
        return _list(args, ledger_url(args))
    return None


def _mark_sent(args: argparse.Namespace, url: str) -> int:
    from reporting.ledger import DeliveryReportError, open_ledger
    from reporting.ledger.statements import read_delivery_report

    path = Path(args.file)
    if not path.is_file():
        print(f"dac7: {path.name}: no such delivery report", file=sys.stderr)
        return 2
    with open_ledger(url, create=False) as ledger:
        try:
            outcome = ledger.mark_statements(read_delivery_report(path), source=path.name)
        except DeliveryReportError as exc:
            print(f"dac7: {exc}; nothing was applied", file=sys.stderr)
            return 2
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(outcome.statuses.items())) or "none new"
    print(
        f"{path.name}: {outcome.events} line(s); {outcome.recorded} new event(s) ({by_status}); "
        f"{outcome.changed} statement(s) changed status; {outcome.older} older than the current status "
        f"(kept in the history); {outcome.repeated} already recorded"
    )
    return 0


def _list(args: argparse.Namespace, url: str) -> int:
    from reporting.ledger import open_ledger

    authority = args.authority.upper() if args.authority else None
    with open_ledger(url, create=False) as ledger:
        counts = ledger.statement_counts(year=args.year, environment=args.environment)
        shown = 0
        for info in ledger.statements(
            year=args.year, status=args.status, environment=args.environment, authority=authority
        ):
            if shown == 0:
                print(f"{'statement_id':<40} {'kind':<10} {'auth':<4} {'year':<4} {'env':<4} status")
            state = "superseded" if info.superseded_by else info.status
            when = f"{info.status_changed:%Y-%m-%d %H:%M:%S}"
            erased = " (content erased)" if info.erased else ""
            print(
                f"{info.statement_id:<40} {info.kind:<10} {info.authority:<4} {info.year:<4} "
                f"{info.environment:<4} {state} since {when} UTC{erased}"
            )
            shown += 1
    if shown == 0:
        print("no statements")
    for c in counts:
        if authority and c.authority != authority:
            continue
        print(
            f"{c.year} {c.authority} {c.environment}: {c.pending} pending, {c.sent} sent, {c.failed} failed, "
            f"{c.superseded} superseded"
        )
    return 0
