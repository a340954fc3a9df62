"""The ``dac7`` command line.

    dac7 demo-data --db URL --sellers N --seed S [--year Y] [--bad-share FRACTION]
    dac7 run --config FILE --source URL --year Y [--as-of DATE] --out DIR [--operator ID,...]
    dac7 validate FILE... [--xsd-dir DIR]
    dac7 summary --out DIR
    dac7 explain --seller ID --year Y --out DIR [--show-personal-data]
    dac7 ledger list [--ledger URL] [--year Y] [--authority XX] [--environment test|prod] [--operator ID]
    dac7 ledger unlock --environment test|prod --authority XX --year Y [--operator ID] [--ledger URL]
    dac7 ledger discard MESSAGE_REF_ID [--ledger URL]
    dac7 ledger mark-uploaded MESSAGE_REF_ID --by NAME [--ledger URL]
    dac7 ledger states [--year Y] [--authority XX] [--environment test|prod] [--ledger URL]
    dac7 status-import FILE [--message-ref-id ID] [--ledger URL]
    dac7 transmit --out DIR --by NAME [--year Y] [--authority XX] [--environment test|prod] [--config FILE]
    dac7 protocol-fetch --out DIR --by NAME [--environment test|prod] [--wait SECONDS] [--config FILE]
    dac7 statements build DIR [--ledger URL]
    dac7 statements pdf DIR (--seller ID ... | --sellers-file FILE) --out PDF_DIR
    dac7 statements show DIR --seller ID [--show-personal-data]
    dac7 statements mark-sent --file F [--ledger URL]
    dac7 statements list [--year Y] [--status S] [--ledger URL]
    dac7 verify check --file F [--adapter NAME ...] [--today DATE] [--max-calls N] [--out F.jsonl]
    dac7 verify expire [--before INSTANT] [--dry-run]
    dac7 verify status
    dac7 due-diligence run --out DIR [--date D] [--config F] [--source URL] [--ledger URL] [--operator ID,...]
    dac7 due-diligence mark --file F [--config F] [--ledger URL]
    dac7 due-diligence show --seller ID [--operator ID] [--ledger URL]
    dac7 due-diligence unlock [--operator ID] [--ledger URL]
    dac7 bench [--sellers N] [--routing jurisdiction|nexus] [--against-dac7] [--watch QUARTER]
               [--render-sellers N ...] [--json FILE]

Exit codes: 0 success (including "nothing to file"), 1 invalid files or a failed run,
2 usage or configuration errors.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc

from reporting.errors import ConfigError, ReportingError, database_error_text, is_database_error
from reporting.logcontext import configure_cli_logging
from reporting.source import UrlError
from reporting.vocabulary import DEFAULT_OPERATOR, ENVIRONMENTS, JURISDICTION, MODES, ROUTINGS

log = logging.getLogger("dac7")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _instant(text: str) -> datetime:
    """An ISO 8601 instant with its offset (``2026-01-15T09:00:00Z``, ``...+01:00``), in UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 instant (e.g. 2026-01-15T09:00:00Z)") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no offset: give Z or +HH:MM (the message's Timestamp is an instant)"
        )
    return value.astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dac7", description="DAC7 platform-operator reporting")
    p.add_argument("-v", "--verbose", action="store_true", help="log every stage")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo-data", help="write a deterministic synthetic marketplace")
    d.add_argument("--db", required=True, help="SQLAlchemy URL of the source database")
    d.add_argument("--sellers", type=int, required=True, help="number of sellers")
    d.add_argument("--seed", type=int, required=True, help="random seed (same seed, same data)")
    d.add_argument("--year", type=int, default=2025, help="reporting year (default 2025)")
    d.add_argument("--replace", action="store_true", help="drop the contract tables first")
    d.add_argument(
        "--bad-share",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="share of sellers made bad on purpose, each with one defect the pipeline must quarantine "
        "(e.g. 0.01; default 0)",
    )

    r = sub.add_parser("run", help="run the pipeline without Airflow")
    r.add_argument("--config", default="dac7.toml", help="configuration file (default dac7.toml)")
    r.add_argument(
        "--source",
        default=os.environ.get("DAC7_SOURCE_URL"),
        help="SQLAlchemy URL of the source database (default: $DAC7_SOURCE_URL, else [source] url)",
    )
    r.add_argument("--year", type=int, required=True, help="reporting year")
    r.add_argument("--as-of", type=_date, help="refunds up to this date count (default: today)")
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--environment", choices=ENVIRONMENTS, help="override [reporting] environment")
    r.add_argument(
        "--staging",
        default=os.environ.get("DAC7_STAGING_DIR"),
        help="staging directory for intermediate data (default: $DAC7_STAGING_DIR, else .dac7/staging)",
    )
    r.add_argument("--run-id", help="run id (a UUID; default: a new one)")
    r.add_argument(
        "--timestamp",
        type=_instant,
        help="the messages' Timestamp, an instant with its offset (default: now); with --run-id, a run "
        "that gives the same files byte for byte (examples, golden files)",
    )
    r.add_argument("--xsd-dir", help="directory with the authority's official XSD files")
    r.add_argument(
        "--ledger",
        help="SQLAlchemy URL of the filing ledger (default: $DAC7_LEDGER_URL, else [ledger] url, "
        "else the SQLite file dac7-ledger.sqlite3 in the working directory)",
    )
    r.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="what to file: auto (the difference to the ledger; default), or a kind the authority asked for",
    )
    r.add_argument("--sellers", type=_ids, help="seller ids to delete (--mode deletion), comma-separated")
    r.add_argument(
        "--authorities",
        type=_ids,
        help="a filing: the filing state only (another state is refused; in a group, the operators that file "
        "there); a preview (routing jurisdiction): the states to preview (e.g. DE,FR)",
    )
    r.add_argument(
        "--operator",
        type=_ids,
        dest="operators",
        metavar="ID[,ID...]",
        help="a group ([operators.ID] in the configuration): file for these operators only ('default' is "
        "[operator]); the others' outputs, ledger and statements are not touched (default: every operator)",
    )

    b = sub.add_parser("bench", help="time every stage of a run on a generated marketplace")
    b.add_argument(
        "--sellers", type=int, default=30_000, help="sellers to generate (default 30,000: ~900k transactions)"
    )
    b.add_argument("--seed", type=int, default=7, help="random seed of the generator (default 7)")
    b.add_argument("--year", type=int, default=2025, help="reporting year (default 2025)")
    b.add_argument("--work", default=".dac7/bench", help="where the marketplace and the runs are kept (.dac7/bench)")
    b.add_argument(
        "--routing",
        choices=ROUTINGS,
        default=JURISDICTION,
        help="jurisdiction: a preview per member state, as a compliance officer's preview run (default); "
        "nexus: the filing",
    )
    b.add_argument("--no-data-docs", action="store_true", help="without the Great Expectations Data Docs")
    b.add_argument(
        "--against-dac7",
        action="store_true",
        help="also time the published dac7 2025.0.0 package on the same sellers (installed into the work "
        "directory with pip on first use)",
    )
    b.add_argument(
        "--source",
        help="a PostgreSQL database URL: the generated marketplace is copied there (once) and read from there",
    )
    b.add_argument(
        "--aggregate",
        choices=("local", "source"),
        default="local",
        help="the run's [source] aggregate: local (default) or source (summed by the source database)",
    )
    b.add_argument(
        "--watch",
        type=int,
        choices=(1, 2, 3, 4),
        metavar="QUARTER",
        help="time the quarterly watch of this quarter (1-4: the year up to its last day, no XML) instead of "
        "the annual run",
    )
    b.add_argument(
        "--render-sellers",
        type=int,
        nargs="+",
        metavar="N",
        help="instead of a run, the render stage's peak RSS at these numbers of reportable sellers (the "
        "marketplace's routed sellers repeated under new ids; each render in a process of its own)",
    )
    b.add_argument(
        "--json",
        help="write the table as JSON here (default <work>/bench-<sellers>-<routing>.json, "
        "bench-<sellers>-watch-q<n>.json for the watch)",
    )

    q = sub.add_parser(
        "source-sql",
        help="print the aggregation of every transaction of a year in a database's SQL, to read or run by hand "
        "(a run with [source] aggregate = 'source' leaves out the rows the checks must see, and reads those)",
    )
    q.add_argument("--dialect", required=True, choices=("duckdb", "postgres", "mysql", "sqlite", "spark"))
    q.add_argument("--year", type=int, required=True, help="reporting year")
    q.add_argument("--config", default="dac7.toml", help="dac7.toml: its time zone and fx_basis (default dac7.toml)")
    q.add_argument("--as-of", type=date.fromisoformat, help="refunds applied until this day (default 31 January after)")
    q.add_argument(
        "--operator",
        help="a group ([operators.ID] in the configuration): the transactions of this operator only, by "
        "transactions.operator_id, as its run sums them ('default' is [operator]; default: every transaction)",
    )

    m = sub.add_parser("summary", help="print the summary table of a published run")
    m.add_argument("--out", required=True, help="output directory of the run (holds manifest.json)")

    e = sub.add_parser("explain", help="one seller's decision in plain words, with every number")
    e.add_argument("--seller", required=True, help="seller_id")
    e.add_argument("--year", type=int, required=True, help="reporting year")
    e.add_argument("--out", required=True, help="output directory of that year's run")
    e.add_argument("--show-personal-data", action="store_true", help="show names, TINs and birth date")

    v = sub.add_parser("validate", help="validate DPI XML files against the schema")
    v.add_argument("files", nargs="+", help="XML files")
    v.add_argument("--xsd-dir", help="directory with DPIXML_v1.0.xsd and its imports (default: ours)")
    v.add_argument("--rules", action="store_true", help="also check the business rules (authority error codes)")
    v.add_argument(
        "--authority",
        help="apply this member state's (or GB's) profile and rules (default: the EU rules of an exchange between "
        "member states; never guessed from TransmittingCountry)",
    )
    v.add_argument(
        "--ledger",
        help="with --rules: also check the DocRefIds against this filing ledger (80000, 80002, 80003, 80013, "
        "80014): ids used before, corrections and resends of unknown or outdated records",
    )
    _add_ledger_parsers(sub)
    _add_statements_parser(sub)
    _add_verify_parser(sub)
    from reporting import due_diligence_cli as due_diligence

    due_diligence.add_parsers(sub)
    return p


def _add_verify_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dac7 verify``: the verification adapters (reporting.verification.cli)."""
    from reporting import verification_cli as verify_cli

    verify_cli.add_parser(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # plain text on stderr; a line of a stage names its period, stage and authority ([2025 render DE])
    configure_cli_logging(logging.INFO if args.verbose else logging.WARNING)
    try:
        if args.command == "demo-data":
            return _demo_data(args)
        if args.command == "run":
            return _run(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "summary":
            return _summary(args)
        if args.command == "source-sql":
            return _source_sql(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "ledger":
            return _ledger(args)
        if args.command == "status-import":
            return _status_import(args)
        if args.command == "transmit":
            return _transmit(args)
        if args.command == "protocol-fetch":
            return _protocol_fetch(args)
        if args.command == "statements":
            return _statements(args)
        if args.command == "verify":
            from reporting import verification_cli as verify_cli

            return verify_cli.run(args, _ledger_url)
        if args.command == "due-diligence":
            from reporting import due_diligence_cli as due_diligence

            return due_diligence.run(args, _ledger_url)
        return _validate(args)
    except ConfigError as exc:
        print(f"dac7: configuration error: {exc}", file=sys.stderr)
        return 2
    except ReportingError as exc:
        print(f"dac7: {exc}", file=sys.stderr)
        return 1
    except (sa_exc.ArgumentError, UrlError):
        # never SQLAlchemy's words: they quote the URL, password and all
        print("dac7: configuration error: not a usable database URL (it could not be parsed)", file=sys.stderr)
        return 2
    except sa_exc.SQLAlchemyError as exc:
        # The driver's own words (connection refused, unknown database ...), without the statement.
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()[0]
        print(f"dac7: the database could not be read: {reason}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader of the output stopped (``dac7 validate ... | head``): no traceback, and no
        # second error when Python flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        if not is_database_error(exc):
            raise
        # DuckDB's or an ADBC driver's words, without the values of the rows they may quote (a
        # command outside a run's stages: explain, statements, due-diligence ...)
        print(f"dac7: a query failed: {database_error_text(exc)}", file=sys.stderr)
        return 1


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1 (e.g. 0.01)")
    return value


@contextmanager
def _demo_package() -> Iterator[None]:
    """Around the import of ``dac7_demo`` (the demo generator and the benchmark), which only
    ``demo-data`` and ``bench`` need: its absence is a clear error, not a traceback."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "dac7_demo":
            raise
        raise ConfigError(
            "the demo generator (the dac7_demo package) is not installed: it ships with the "
            "dac7-reporting distribution; reinstall that from the repository (make venv)"
        ) from None


def _demo_data(args: argparse.Namespace) -> int:
    with _demo_package():
        from dac7_demo.generator import generate_demo

    result = generate_demo(
        args.db, sellers=args.sellers, seed=args.seed, year=args.year, replace=args.replace, bad_share=args.bad_share
    )
    print("demo marketplace written: " + ", ".join(f"{k} {v}" for k, v in result.items()))
    if args.bad_share:
        # how many of each kind, never who: the ground truth stays with generate_demo's caller
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(Counter(result.bad_sellers.values()).items()))
        print(f"bad sellers made on purpose: {len(result.bad_sellers)}" + (f" ({kinds})" if kinds else ""))
    return 0


def _source_sql(args: argparse.Namespace) -> int:
    from reporting.config import load_config
    from reporting.period import Period
    from reporting.pushdown import OperatorFilter, source_totals_sql

    config = load_config(args.config)
    as_of = args.as_of or date(args.year + 1, 1, 31)
    period = Period(args.year, config.reporting.timezone, as_of)
    payment_date = config.reporting.fx_basis == "payment_date"
    operator = None
    if args.operator is not None:  # one operator's transactions, in a source with transactions.operator_id
        config.for_operator(args.operator)  # a configured operator, or the error that lists them
        operator = OperatorFilter(args.operator, config.operator_ids, column=True)
    elif len(config.operator_ids) > 1:
        print(
            "note: the query sums the transactions of every operator of the group together, which no run files; "
            f"--operator ID sums one operator's, as its run does ({', '.join(config.operator_ids)})",
            file=sys.stderr,
        )
    print(source_totals_sql(period, payment_date_rates=payment_date, dialect=args.dialect, operator=operator) + ";")
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.watch and args.against_dac7:
        raise ConfigError("bench --watch renders no XML: it takes no --against-dac7")
    if args.render_sellers and (args.watch or args.against_dac7 or args.source):
        raise ConfigError(
            "bench --render-sellers times the render alone: it takes no --watch, --against-dac7 or --source"
        )
    if args.render_sellers and min(args.render_sellers) < 1:
        raise ConfigError("bench --render-sellers: numbers of reportable sellers, each at least 1")
    with _demo_package():
        from dac7_demo.bench import bench, table
        from dac7_demo.bench_render import bench_render, render_table

    work = Path(args.work)
    if args.render_sellers:
        scaled = bench_render(
            sellers=args.sellers, scales=args.render_sellers, work=work, seed=args.seed, year=args.year
        )
        print(render_table(scaled))
        name = "-".join(str(n) for n in args.render_sellers)
        target = Path(args.json) if args.json else work / f"bench-render-{name}.json"
        target.write_text(json.dumps(scaled, indent=2) + "\n", encoding="utf-8")
        print(f"\nwritten: {target}")
        return 0
    result = bench(
        sellers=args.sellers,
        seed=args.seed,
        year=args.year,
        work=work,
        routing=args.routing,
        data_docs=not args.no_data_docs,
        against_dac7=args.against_dac7,
        source=args.source,
        aggregate=args.aggregate,
        watch=args.watch,
    )
    print(table(result))
    mode = f"watch-q{args.watch}" if args.watch else args.routing
    target = Path(args.json) if args.json else work / f"bench-{args.sellers}-{mode}.json"
    target.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {target}")
    return 0


def _ids(text: str) -> list[str]:
    ids = [x.strip() for x in text.split(",") if x.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("expected one or more ids, comma-separated")
    return ids


def _run(args: argparse.Namespace) -> int:
    from reporting.pipeline import run, summary_table
    from reporting.settings import load_settings

    result = run(
        config_path=args.config,
        source_url=args.source,
        year=args.year,
        as_of=args.as_of,
        out_dir=args.out,
        environment=args.environment,
        staging_root=args.staging,
        run_id=args.run_id,
        timestamp=args.timestamp,
        xsd_dir=args.xsd_dir,
        ledger_url=args.ledger,
        mode=args.mode,
        sellers=args.sellers,
        authorities=args.authorities,
        operators=args.operators,
    )
    for i, one in enumerate(result.operators or (result,)):
        if result.operators:  # a group: each operator's filing, in its own folder
            print(("\n" if i else "") + f"operator {one.operator_id}:")
        print(summary_table(one.manifest))
        out = Path(load_settings(one.run_dir).out_dir) if result.operators else Path(args.out)
        if not one.manifest["files"]:
            print(f"nothing to file (the ledger holds this period as filed); manifest: {out / 'manifest.json'}")
        else:
            print(f"XML files under {out}/<authority>/, manifest: {out / 'manifest.json'}")
        if one.statements and one.statements["written"]:
            print(f"seller statements: {one.statements['statements']} under {out / 'statements'}/")
            for finding in one.statements["findings"]:
                print(f"  [{finding['rule']}] {finding['table']} {finding['key']}: {finding['message']}")
    print(f"staging (intermediate data, not published): {result.run_dir}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from reporting.pipeline import load_manifest, summary_table

    path = Path(args.out) / "manifest.json"
    if not path.is_file():
        print(f"dac7: no manifest.json in {args.out}: the run did not publish", file=sys.stderr)
        return 1
    manifest = load_manifest(args.out)
    print(summary_table(manifest))
    if manifest["files"]:
        print(f"XML files under {Path(args.out).resolve()}/<authority>/")
    feed = Path(args.out) / "statements" / "statements.jsonl"
    if feed.is_file():  # a filing's seller statements (counted, never shown: they hold personal data)
        with feed.open("rb") as f:
            count = sum(1 for line in f if line.strip())
        print(f"seller statements: {count} under {feed.parent.resolve()}/ (feed: statements.jsonl)")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from reporting.explain import explain_seller

    print(explain_seller(args.out, args.seller, args.year, show_personal_data=args.show_personal_data))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from reporting.authorities import EU_GENERIC, profile_for
    from reporting.checks.business import EU_EXCHANGE, NotEuDpiMessageError, RuleFinding, check_message
    from reporting.checks.schema import load_schema, validate_file

    profile = profile_for(args.authority.upper()) if args.authority else EU_GENERIC
    main_xsd = profile.official_schema(args.xsd_dir)
    if not main_xsd.is_file():
        raise ConfigError(f"--xsd-dir {args.xsd_dir}: no {main_xsd.name} there")
    schema = load_schema(str(main_xsd))
    rules = profile.rule_set if args.authority else EU_EXCHANGE
    ledger_view: Callable[[str], tuple[set[str], dict[str, str]]] | None = None
    if args.ledger:
        if not args.rules:
            raise ConfigError("--ledger checks the business rules against the ledger: add --rules")
        from reporting.ledger import open_ledger
        from reporting.stages.validate import file_ledger_view

        ledger = open_ledger(args.ledger, create=False)

        def view(path: str) -> tuple[set[str], dict[str, str]]:
            return file_ledger_view(ledger, Path(path))

        ledger_view = view

    bad = 0
    for f in args.files:
        if not Path(f).is_file():
            print(f"{f}: no such file")
            bad += 1
            continue
        try:
            errors = validate_file(f, schema)
            for e in errors:
                print(e)  # file:line: message (at /path/of/the/element)
            findings = []
            if args.rules:
                if rules.codes:  # the EU rules; a national edition may bring only its own checks
                    known, states = ledger_view(f) if ledger_view else ((), None)
                    findings = check_message(
                        f,
                        rules=rules,
                        receiving_country=args.authority.upper() if args.authority else None,
                        known_doc_ref_ids=known,
                        ledger=states,
                    )
                findings += profile.extra_checks(Path(f)) if args.authority and not errors else []
            if args.authority and not errors:  # the authority's checks at upload (HMRC's), without its POID
                findings += [
                    RuleFinding(c.name, "upload", "error", None, "/", c.text)
                    for c in profile.upload_checks(Path(f), {})
                    if not c.ok
                ]
        except (NotEuDpiMessageError, ValueError) as exc:  # XmlFileError: empty, cut off, DOCTYPE, not UTF-8
            print(f"{f}: {exc}" if not str(exc).startswith(f"{f}: ") else str(exc))
            bad += 1
            continue
        for finding in findings:
            print(f"{f}: {finding.describe()}")
        failed = bool(errors) or any(x.severity == "error" for x in findings)
        bad += failed
        if not failed:
            print(f"{f}: valid" + (f" ({rules.name} rules)" if args.rules else ""))
    return 1 if bad else 0


# ------------------------------------------------------------------------------------------ ledger


def _add_ledger_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from reporting.ledger.url import add_ledger_arguments

    g = sub.add_parser("ledger", help="the filing ledger: what was sent to which authority")
    lsub = g.add_subparsers(dest="ledger_command", required=True)
    gl = lsub.add_parser("list", help="every message filed, with its status")
    add_ledger_arguments(gl)
    gl.add_argument("--year", type=int, help="only this reporting year")
    gl.add_argument("--authority", help="only this receiving country (e.g. DE)")
    gl.add_argument("--environment", choices=ENVIRONMENTS, help="only test or production filings")
    gl.add_argument("--operator", help="only this operator's of a group ([operators.ID]; 'default': [operator])")
    gu = lsub.add_parser("unlock", help="remove the filing lock a run that died left behind (SQLite)")
    add_ledger_arguments(gu)
    gu.add_argument("--environment", choices=ENVIRONMENTS, required=True)
    gu.add_argument("--authority", required=True, help="receiving country (e.g. DE)")
    gu.add_argument("--year", type=int, required=True, help="reporting year")
    gu.add_argument(
        "--operator", default=DEFAULT_OPERATOR, help="the operator of a group whose lock it is (default: default)"
    )
    gd = lsub.add_parser("discard", help="give up a message rendered but never published")
    add_ledger_arguments(gd)
    gd.add_argument("message_ref_id", help="MessageRefId of the message")

    gm = lsub.add_parser("mark-uploaded", help="record that a person uploaded a message in the authority's portal")
    add_ledger_arguments(gm)
    gm.add_argument("message_ref_id", help="MessageRefId of the published message")
    gm.add_argument("--by", required=True, help="who uploaded it (recorded in the ledger)")
    gs = lsub.add_parser("states", help="every filing's state with who acted and when")
    add_ledger_arguments(gs)
    gs.add_argument("--year", type=int, help="only this reporting year")
    gs.add_argument("--authority", help="only this receiving country (e.g. DE)")
    gs.add_argument("--environment", choices=ENVIRONMENTS, help="only test or production filings")

    tx = sub.add_parser(
        "transmit", help="send the published messages: DE through the BZSt DIP, the others to the outbox"
    )
    add_ledger_arguments(tx)
    tx.add_argument("--out", required=True, help="the output directory the messages were published to")
    tx.add_argument("--by", required=True, help="who transmits (recorded in the ledger)")
    tx.add_argument("--year", type=int, help="only this reporting year")
    tx.add_argument("--authority", help="only this receiving country (e.g. DE)")
    tx.add_argument("--environment", choices=ENVIRONMENTS, help="only test or production filings")
    pf = sub.add_parser("protocol-fetch", help="fetch and apply the BZSt DIP protocols of finished transfers")
    add_ledger_arguments(pf)
    pf.add_argument("--out", required=True, help="the output directory (protocols are kept in <out>/protocols)")
    pf.add_argument("--by", required=True, help="who fetches (recorded in the ledger)")
    pf.add_argument("--environment", choices=ENVIRONMENTS, help="test or prod (default: both)")
    pf.add_argument("--wait", type=int, default=0, help="seconds to keep asking while a protocol is missing")

    si = sub.add_parser("status-import", help="apply an authority's status document to the ledger")
    si.add_argument(
        "file", help="the status document (EU DAC7 status message, BZSt DIP protocol, HMRC business rule result)"
    )
    si.add_argument(
        "--message-ref-id",
        help="the message the document answers, where it names none itself (an HMRC business rule result "
        "with file errors only)",
    )
    add_ledger_arguments(si)


def _ledger_url(args: argparse.Namespace) -> str:
    from reporting.config import load_config
    from reporting.ledger.url import default_ledger_url, resolve_ledger_url

    config = args.config or ("dac7.toml" if Path("dac7.toml").is_file() else None)
    config_url = load_config(config).ledger if config and not args.ledger else None
    # --ledger defaults to $DAC7_LEDGER_URL already (the parser): no environment read here
    return resolve_ledger_url(args.ledger, env={}, config_url=config_url) or default_ledger_url(Path.cwd())


def _ledger(args: argparse.Namespace) -> int:
    from reporting.ledger import open_ledger
    from reporting.ledger.model import period_label

    with open_ledger(_ledger_url(args), create=False) as ledger:
        if args.ledger_command == "unlock":
            authority = args.authority.upper()
            period = period_label(authority, args.year, args.environment)
            held = ledger.break_lock(args.environment, authority, args.year, args.operator)
            if args.operator != DEFAULT_OPERATOR:
                period += f" of operator {args.operator}"
            print(f"removed the filing lock of {period}, {held.describe()}" if held else f"no filing lock for {period}")
            return 0
        if args.ledger_command == "mark-uploaded":
            state = ledger.mark_uploaded(args.message_ref_id, by=args.by)
            step = state.steps[-1]
            print(
                f"{args.message_ref_id}: uploaded by {step.by} at {step.at:%Y-%m-%d %H:%M:%S} UTC; "
                "its answer comes with dac7 status-import"
            )
            return 0
        if args.ledger_command == "states":
            authority = args.authority.upper() if args.authority else None
            print(_states_table(ledger.filing_states(args.year, authority, args.environment)))
            return 0
        if args.ledger_command == "discard":
            ledger.discard(args.message_ref_id)
            print(f"{args.message_ref_id}: discarded (its ids stay used)")
            return 0
        authority = args.authority.upper() if args.authority else None
        print(
            _ledger_table(
                ledger.messages(
                    year=args.year, authority=authority, environment=args.environment, operator_id=args.operator
                )
            )
        )
    return 0


def _ledger_table(messages: Sequence[Any]) -> str:
    if not messages:
        return "no messages"
    width = max(len("MessageRefId"), *(len(m.message_ref_id) for m in messages))
    # the operator of a group, where the ledger holds another operator's than [operator]'s
    group = any(m.operator_id != DEFAULT_OPERATOR for m in messages)
    op_width = max(len("operator"), *(len(m.operator_id) for m in messages)) if group else 0
    head = f"{'created (UTC)':<20} " + (f"{'operator':<{op_width}} " if group else "")
    head += f"{'auth':<4} {'year':<4} {'env':<4} {'type':<6} {'MessageRefId':<{width}} "
    lines = [head + f"{'sellers':>7}  status"]
    for m in messages:
        status = m.status + (f" ({m.rejected_records} record(s) rejected)" if m.rejected_records else "")
        status += f", {m.errors} error(s)" if m.errors else ""
        operator = f"{m.operator_id:<{op_width}} " if group else ""
        lines.append(
            f"{m.created:%Y-%m-%d %H:%M:%S}  {operator}{m.authority:<4} {m.reporting_year:<4} {m.environment:<4} "
            f"{m.message_type_indic:<6} {m.message_ref_id:<{width}} {m.sellers:>7}  {status}"
        )
    return "\n".join(lines)


def _states_table(states: Sequence[Any]) -> str:
    if not states:
        return "no messages"
    lines = []
    for s in states:
        steps = "; ".join(f"{x.state} by {x.by} {x.at:%Y-%m-%d %H:%M}" for x in s.steps if x.at)
        lines.append(f"{s.authority} {s.reporting_year} {s.environment} {s.message_ref_id}: {s.state} ({steps})")
    return "\n".join(lines)


def _transmission_settings(args: argparse.Namespace) -> Any:
    from reporting.config import Transmission, load_config

    config = args.config or ("dac7.toml" if Path("dac7.toml").is_file() else None)
    return load_config(config).transmission if config else Transmission()


def _transmit(args: argparse.Namespace) -> int:
    from reporting.ledger import open_ledger
    from reporting.transmit import DipCredentials, channel_of, transmit_message

    settings = _transmission_settings(args)
    authority = args.authority.upper() if args.authority else None
    sent = failed = 0
    with open_ledger(_ledger_url(args), create=False) as ledger:
        todo = [
            s
            for s in ledger.filing_states(args.year, authority, args.environment)
            if s.state == "published" and s.message_status == "published"
        ]
        if not todo:
            print("nothing to transmit: no published message waits to be sent")
            return 0
        creds = None
        for state in todo:
            path = Path(args.out) / state.file_name  # <authority>/<name>, as published
            if not path.is_file():
                print(f"{state.message_ref_id}: {path} is not there; skipped (another output directory?)")
                continue
            if channel_of(state.authority) == "dip" and creds is None:
                creds = DipCredentials.from_env()
            try:
                done = transmit_message(
                    ledger,
                    state.message_ref_id,
                    path,
                    out_dir=args.out,
                    actor=args.by,
                    settings=settings,
                    dip=functools.partial(_dip_for, settings=settings, creds=creds) if creds else None,
                )
            except ReportingError as exc:
                failed += 1
                print(f"{state.message_ref_id}: not transmitted: {exc}", file=sys.stderr)
                continue
            sent += 1
            if done.channel == "dip":
                print(
                    f"{done.message_ref_id}: transmitted to the BZSt DIP ({state.environment}), transfer {done.ticket}"
                )
            else:
                assert done.package is not None
                ready = "ready to upload" if done.package.ready else "NOT ready: see its checklist"
                print(f"{done.message_ref_id}: outbox package {done.package.folder} ({ready})")
    return 1 if failed else 0


def _dip_for(environment: str, *, settings: Any, creds: Any) -> Any:
    from reporting.transmit import dip_client

    return dip_client(environment, settings, creds)


def _protocol_fetch(args: argparse.Namespace) -> int:
    import time

    from reporting.ledger import open_ledger
    from reporting.transmit import DipCredentials, dip_client, fetch_protocols

    settings = _transmission_settings(args)
    creds = DipCredentials.from_env()
    deadline = time.monotonic() + max(0, args.wait)
    with open_ledger(_ledger_url(args), create=False) as ledger:
        environments = [args.environment] if args.environment else list(ENVIRONMENTS)
        while True:
            waiting: list[str] = []
            for env in environments:
                with dip_client(env, settings, creds) as client:
                    result = fetch_protocols(ledger, client, environment=env, keep_dir=args.out, actor=args.by)
                for outcome in result.applied:
                    said = outcome.outcome.replace("_", " ")
                    rejected = (
                        f"; {len(outcome.rejected_doc_ref_ids)} record(s) rejected"
                        if outcome.rejected_doc_ref_ids
                        else ""
                    )
                    print(f"{outcome.message_ref_id}: {said}, message {outcome.message_status}{rejected}")
                waiting += result.waiting
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(min(5, max(0.0, deadline - time.monotonic())))
    for ref in waiting:
        print(f"{ref}: no protocol yet; ask again later")
    return 0


def _status_import(args: argparse.Namespace) -> int:
    from reporting.ledger import open_ledger
    from reporting.ledger.status import import_status

    with open_ledger(_ledger_url(args), create=False) as ledger:
        outcome = import_status(ledger, args.file, message_ref_id=args.message_ref_id)
    if outcome.already_imported:
        print(f"{args.file}: already imported for {outcome.message_ref_id}; nothing changed")
        return 0
    said = outcome.outcome.replace("_", " ")
    text = f"{outcome.message_ref_id}: {said} ({outcome.format}), message {outcome.message_status}"
    if outcome.rejected_doc_ref_ids:
        shown = ", ".join(outcome.rejected_doc_ref_ids[:10])
        more = " ..." if len(outcome.rejected_doc_ref_ids) > 10 else ""
        text += f"; {len(outcome.rejected_doc_ref_ids)} record(s) rejected: {shown}{more}"
    print(text + f"; {outcome.file_errors} file error(s), {outcome.record_errors} record error(s)")
    if outcome.unmatched_doc_ref_ids:
        print(f"  not in this message: {', '.join(outcome.unmatched_doc_ref_ids[:10])}")
    for note in outcome.notes:
        print(f"  note: {note}")
    return 0


# -------------------------------------------------------------------------------------- statements


def _add_statements_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """``dac7 statements`` and its subcommands (returned, so that one more is one ``add_parser``)."""
    from reporting import statement_delivery

    g = sub.add_parser("statements", help="the seller statements of a filing (what was reported about each seller)")
    ssub = g.add_subparsers(dest="statements_command", required=True)
    b = ssub.add_parser("build", help="write the statements of a published run again (the same files)")
    b.add_argument("dir", help="the run's staging directory, or its output directory (manifest.json)")
    b.add_argument(
        "--ledger",
        default=os.environ.get("DAC7_LEDGER_URL"),
        help="the filing ledger's URL, where the run's settings hold only its masked form (default: $DAC7_LEDGER_URL)",
    )
    f = ssub.add_parser("pdf", help="a PDF of the statements of one seller or a list (never of every seller)")
    f.add_argument("dir", help="the output directory of a published run (with statements/)")
    f.add_argument("--seller", action="append", default=[], help="a seller_id (repeatable)")
    f.add_argument("--sellers-file", help="a file of seller_ids, one a line")
    f.add_argument("--out", required=True, help="the folder for the PDF files (created owner-only)")
    w = ssub.add_parser("show", help="the statements a seller holds now, as text (masked: a support copy)")
    w.add_argument("dir", help="the output directory of a published run (with statements/)")
    w.add_argument("--seller", required=True, help="the seller_id")
    w.add_argument(
        "--show-personal-data",
        action="store_true",
        help="print names, addresses, TINs, accounts and the birth date in full (default: masked)",
    )
    statement_delivery.add_parsers(ssub)  # mark-sent, list: the delivery record in the ledger
    return ssub


def _statements(args: argparse.Namespace) -> int:
    from reporting import statement_delivery

    if args.statements_command == "build":
        return _statements_build(args)
    if args.statements_command == "pdf":
        return _statements_pdf(args)
    if args.statements_command == "show":
        return _statements_show(args)
    done = statement_delivery.run(args, _ledger_url)
    if done is None:
        raise ConfigError(f"dac7 statements {args.statements_command}: not a subcommand")
    return done


def _run_dir_of(path: Path) -> Path:
    """The staging directory of a run given as itself or as its output directory."""
    if (path / "settings.json").is_file():
        return path
    manifest = path / "manifest.json"
    if manifest.is_file():
        staging = json.loads(manifest.read_text(encoding="utf-8")).get("staging")
        if staging and (Path(staging) / "settings.json").is_file():
            return Path(staging)
        raise ConfigError(f"{path}: the run's staging directory ({staging}) is gone; statements need its settings")
    raise ConfigError(f"{path}: neither a run's staging directory (settings.json) nor its output (manifest.json)")


def _statements_build(args: argparse.Namespace) -> int:
    from reporting.pipeline import use_ledger_url, write_statements

    run_dir = _run_dir_of(Path(args.dir))
    use_ledger_url(run_dir, args.ledger)
    result = write_statements(run_dir)
    if not result["written"]:
        print(f"no statements: the run is a {result['reason']} (routing jurisdiction), not a filing")
        return 0
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(result["kinds"].items())) or "none"
    print(f"{result['statements']} statement(s) ({kinds}) in {result['seconds']:.2f} s: {result['feed']}")
    for finding in result["findings"]:
        print(f"  [{finding['rule']}] {finding['table']} {finding['key']}: {finding['message']}")
    return 0


def _statements_dir(path: str) -> Path:
    """The output directory of ``path`` (the run's staging directory leads to it) that holds a feed."""
    from reporting.pipeline import output_dir
    from reporting.statements.feed import FEED, STATEMENTS_DIR, run_feeds

    out = Path(path)
    if not run_feeds(out) and (out / "settings.json").is_file():
        out = Path(output_dir(out))
    if not run_feeds(out):
        raise ConfigError(f"{out}: no {STATEMENTS_DIR}/{FEED}; write the statements first (dac7 statements build)")
    return out


def _wanted_sellers(args: argparse.Namespace) -> set[str]:
    wanted = {s.strip() for s in args.seller if s.strip()}
    if getattr(args, "sellers_file", None):
        with open(args.sellers_file, encoding="utf-8") as f:
            wanted |= {line.strip() for line in f if line.strip()}
    if not wanted:
        raise ConfigError("name the sellers: --seller ID (repeatable) or --sellers-file F; never every seller")
    return wanted


def _checked_page(out: Path, statement: dict[str, Any]) -> Path:
    """The page of a feed's statement, if it lies inside ``out`` and holds the bytes the feed names."""
    import hashlib

    root = out.resolve()
    page = (out / str(statement.get("html_path", ""))).resolve()
    if not page.is_relative_to(root / "statements") or page.suffix != ".html":
        raise ConfigError(f"statement {statement['statement_id']}: its html_path leads outside {out}/statements")
    try:
        data = page.read_bytes()
    except OSError:
        raise ConfigError(
            f"statement {statement['statement_id']}: its page {statement['html_path']} is missing"
        ) from None
    if hashlib.sha256(data).hexdigest() != statement.get("sha256"):
        raise ConfigError(
            f"statement {statement['statement_id']}: its page {statement['html_path']} is not the one the feed "
            "names (another sha256): not shown"
        )
    return page


def _statements_pdf(args: argparse.Namespace) -> int:
    from reporting.statements.feed import current_statements
    from reporting.statements.pdf import write_pdf

    wanted = _wanted_sellers(args)
    out = _statements_dir(args.dir)
    current = current_statements(out, wanted)
    for seller in sorted(current):
        for statement in current[seller]:
            page = _checked_page(out, statement)
            target = write_pdf(page, Path(args.out) / f"{statement['statement_id']}.pdf")
            print(f"{seller}: {target}")
    missing = sorted(wanted - set(current))
    for seller in missing[:20]:
        print(f"dac7: no statement for seller {seller} in {out}", file=sys.stderr)
    return 1 if missing else 0


def _statements_show(args: argparse.Namespace) -> int:
    """The statements a seller holds now (every run's feed, none that a later one replaces), as
    text: masked (a support copy) unless ``--show-personal-data``."""
    from reporting.statements.feed import current_statements
    from reporting.statements.masked import as_text, mask_statement

    seller = args.seller.strip()
    if not seller:
        raise ConfigError("--seller: name the seller_id")
    out = _statements_dir(args.dir)
    found = current_statements(out, {seller}).get(seller, [])
    if not found:
        print(f"dac7: no statement for seller {seller} in {out}", file=sys.stderr)
        return 1
    for statement in found:
        shown = statement if args.show_personal_data else mask_statement(statement)
        print("\n".join(as_text(shown)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
