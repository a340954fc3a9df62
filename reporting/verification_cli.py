"""``dac7 verify``: the verification adapters (:mod:`reporting.verification`) from the command line.

    dac7 verify check --file F [--adapter NAME ...] [--today DATE] [--max-calls N] [--refresh SELLER_ID ...]
                      [--out F.jsonl] [--operator ID] [--config FILE] [--ledger URL]
    dac7 verify expire [--before INSTANT] [--dry-run] [--config FILE] [--ledger URL]
    dac7 verify status [--config FILE]

``check`` verifies the identifiers of a file (:mod:`reporting.verification.items`) with the
adapters the configuration switches on (or those named), records every call in the ledger and
prints one line per result, identifiers masked; ``--out`` writes the results as JSON Lines
(owner-only, identifiers masked, with their keyed hash). The key of the hashes comes from
``DAC7_VERIFICATION_KEY`` in the environment. ``expire`` deletes the records whose ten years have
run (PStTG § 24(3)); ``status`` prints VIES's check-status.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from reporting.config import VERIFICATION_ADAPTERS, VIES_REST_URL, Config, VerificationSettings, load_config
from reporting.vocabulary import DEFAULT_OPERATOR


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dac7 verify`` and its subcommands."""
    from reporting.ledger.url import add_ledger_arguments

    v = sub.add_parser("verify", help="check sellers' TINs and VAT numbers with the verification adapters")
    vsub = v.add_subparsers(dest="verify_command", required=True)
    c = vsub.add_parser("check", help="verify the identifiers of a file; every call is recorded in the ledger")
    c.add_argument(
        "--file",
        required=True,
        help="the identifiers: CSV with the header seller_id,kind,country,value[,seller_type], JSON Lines, or a "
        "JSON list of such objects ('-': standard input)",
    )
    c.add_argument(
        "--adapter",
        action="append",
        choices=VERIFICATION_ADAPTERS,
        help="only this adapter (repeatable; it must be switched on in [verification.NAME]; default: every one "
        "switched on)",
    )
    c.add_argument("--today", type=date.fromisoformat, help="the day whose cache is fresh (default: today, UTC)")
    c.add_argument("--max-calls", type=int, help="at most this many calls per adapter (the rest: asked later)")
    c.add_argument(
        "--refresh",
        action="append",
        default=[],
        metavar="SELLER_ID",
        help="ask again, whatever the cache holds, for this seller's identifiers (its data was resubmitted; "
        "repeatable)",
    )
    c.add_argument(
        "--operator",
        default=DEFAULT_OPERATOR,
        help="a group: whose VAT number is VIES's requester ('default' is [operator])",
    )
    c.add_argument("--out", help="also write the results here as JSON Lines (owner-only; identifiers masked)")
    add_ledger_arguments(c)
    e = vsub.add_parser("expire", help="delete the verification records whose ten years have run (PStTG § 24(3))")
    e.add_argument("--before", help="the instant (ISO 8601 with offset) the retention is judged at (default: now)")
    e.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    add_ledger_arguments(e)
    s = vsub.add_parser("status", help="VIES's check-status: which member states' services answer now")
    s.add_argument("--config", help="configuration file with [verification.vies] (default: dac7.toml if present)")


def run(args: argparse.Namespace, ledger_url: Callable[[argparse.Namespace], str]) -> int:
    if args.verify_command == "check":
        return _check(args, ledger_url)
    if args.verify_command == "expire":
        return _expire(args, ledger_url)
    return _status(args)


def _config(args: argparse.Namespace, *, required: bool) -> Config | None:
    path = args.config or ("dac7.toml" if Path("dac7.toml").is_file() or required else None)
    return load_config(path) if path else None


def _check(args: argparse.Namespace, ledger_url: Callable[[argparse.Namespace], str]) -> int:
    from reporting.ledger import open_ledger
    from reporting.verification import (
        KEY_ENV,
        VerificationError,
        build_adapters,
        hash_key,
        results_by_item,
        verify_batch,
    )
    from reporting.verification.items import read_items

    config = _config(args, required=True)
    assert config is not None
    config = config.for_operator(args.operator)
    key = hash_key(os.environ.get(KEY_ENV))
    try:
        items = read_items(args.file)
    except VerificationError as exc:
        print(f"dac7: {exc}; nothing was verified", file=sys.stderr)
        return 2
    adapters = build_adapters(config, args.adapter)
    today = args.today or datetime.now(UTC).date()
    try:
        with open_ledger(ledger_url(args)) as ledger:
            results = verify_batch(
                items, adapters, ledger, today, key=key, max_calls=args.max_calls, refresh=args.refresh
            )
    finally:
        for adapter in adapters:
            adapter.close()
    for r in results:
        print(
            f"{r.item.seller_id}  {r.item.kind} {r.item.country} {r.item.masked}  {r.adapter}: {r.state}"
            + (" (cached)" if r.cached else "")
            + f"  {r.detail}"
            + (f"  consultation number {r.evidence}" if r.evidence else "")
        )
    unchecked = [o for o in results_by_item(items, results) if not o.checked]
    for o in unchecked:  # no adapter of this batch takes it: said, never left out
        print(f"{o.item.seller_id}  {o.item.kind} {o.item.country} {o.item.masked}  {o.detail}")
    counts = Counter(f"{r.adapter} {r.state}" for r in results)
    print(
        f"{len(items)} identifier(s), {len(results)} result(s): "
        + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none")
        + (f"; {len(unchecked)} identifier(s) not checked" if unchecked else "")
    )
    if args.out:
        _write_results(Path(args.out), results)
        print(f"results: {args.out}")
    return 0


def result_record(r: Any) -> dict[str, Any]:
    """A result as a line of ``--out``: the identifier masked and hashed, never in full."""
    return {
        "seller_id": r.item.seller_id,
        "kind": r.item.kind,
        "country": r.item.country,
        "value_masked": r.item.masked,
        "identifier_hash": r.identifier_hash,
        "adapter": r.adapter,
        "state": r.state,
        "level": r.level,
        "source": r.source,
        "checked_at": r.checked_at.isoformat(),
        "detail": r.detail,
        "evidence": r.evidence,
        "request_date": r.request_date.isoformat() if r.request_date else None,
        "cached": r.cached,
        "attempts": r.attempts,
    }


def _write_results(path: Path, results: Sequence[Any]) -> None:
    from reporting.private import FILE_MODE

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # an existing file too: it names sellers
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(result_record(r), ensure_ascii=False, sort_keys=True) + "\n")


def _expire(args: argparse.Namespace, ledger_url: Callable[[argparse.Namespace], str]) -> int:
    from reporting.errors import ConfigError
    from reporting.ledger import open_ledger
    from reporting.verification import delete_expired

    config = _config(args, required=False)
    if config is None:
        raise ConfigError(
            "dac7 verify expire needs the configuration: its [reporting] timezone decides in which year a record "
            "was made, and so when its ten years end (PStTG § 24(3)); give --config FILE (there is no dac7.toml here)"
        )
    zone = config.reporting.tz
    before = datetime.now(UTC)
    if args.before:
        try:
            before = datetime.fromisoformat(args.before)
        except ValueError:
            raise ConfigError(
                f"--before {args.before!r} is not an ISO 8601 instant (e.g. 2036-01-01T00:00:00Z)"
            ) from None
        if before.tzinfo is None:
            raise ConfigError(f"--before {args.before!r} has no offset: give Z or +HH:MM")
    with open_ledger(ledger_url(args), create=False) as ledger:
        done = delete_expired(ledger.engine, before=before, zone=zone, dry_run=args.dry_run)
    verb = "would delete" if done.dry_run else "deleted"
    print(
        f"{verb} {done.calls} verification call(s) and {done.cached} cached answer(s) made before "
        f"{done.before:%Y-%m-%d %H:%M} UTC (PStTG § 24(3): ten years from the end of the year they were made)"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from reporting.verification.vies import ViesRest

    config = _config(args, required=False)
    base = config.verification.vies if config else VerificationSettings().vies
    url = base.url if base.interface == "rest" and base.url else VIES_REST_URL
    adapter = ViesRest(dataclasses.replace(base, interface="rest", url=url), None)
    try:
        status = adapter.check_status()
    finally:
        adapter.close()
    if status is None:
        print(f"dac7: VIES check-status ({url}) gave no answer", file=sys.stderr)
        return 1
    for country, availability in sorted(status.items()):
        print(f"{country}: {availability}")
    return 0
