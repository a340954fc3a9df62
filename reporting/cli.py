"""The ``dac7`` command line.

    dac7 demo-data --db URL --sellers N --seed S [--year Y]
    dac7 run --config FILE --source URL --year Y [--as-of DATE] --out DIR
    dac7 validate FILE... [--xsd-dir DIR]
    dac7 summary --out DIR
    dac7 explain --seller ID --year Y --out DIR [--show-personal-data]

Exit codes: 0 success (including "nothing to file"), 1 invalid files or a failed run,
2 usage or configuration errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from sqlalchemy import exc as sa_exc

from reporting.errors import ConfigError, ReportingError

log = logging.getLogger("dac7")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


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
    r.add_argument("--environment", choices=("test", "prod"), help="override [reporting] environment")
    r.add_argument(
        "--staging",
        default=os.environ.get("DAC7_STAGING_DIR"),
        help="staging directory for intermediate data (default: $DAC7_STAGING_DIR, else .dac7/staging)",
    )
    r.add_argument("--run-id", help="run id (a UUID; default: a new one)")
    r.add_argument("--xsd-dir", help="directory with the authority's official XSD files")

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
        help="apply this member state's profile and rules (default: the EU rules of an exchange between "
        "member states; never guessed from TransmittingCountry)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "demo-data":
            return _demo_data(args)
        if args.command == "run":
            return _run(args)
        if args.command == "summary":
            return _summary(args)
        if args.command == "explain":
            return _explain(args)
        return _validate(args)
    except ConfigError as exc:
        print(f"dac7: configuration error: {exc}", file=sys.stderr)
        return 2
    except ReportingError as exc:
        print(f"dac7: {exc}", file=sys.stderr)
        return 1
    except sa_exc.ArgumentError as exc:
        print(f"dac7: configuration error: not a usable database URL ({exc})", file=sys.stderr)
        return 2
    except sa_exc.SQLAlchemyError as exc:
        # The driver's own words (connection refused, unknown database ...), without the statement.
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()[0]
        print(f"dac7: the database could not be read: {reason}", file=sys.stderr)
        return 1


def _demo_data(args: argparse.Namespace) -> int:
    from reporting.demo import generate_demo

    counts = generate_demo(args.db, sellers=args.sellers, seed=args.seed, year=args.year, replace=args.replace)
    print("demo marketplace written: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def _run(args: argparse.Namespace) -> int:
    from reporting.pipeline import run, summary_table

    result = run(
        config_path=args.config,
        source_url=args.source,
        year=args.year,
        as_of=args.as_of,
        out_dir=args.out,
        environment=args.environment,
        staging_root=args.staging,
        run_id=args.run_id,
        xsd_dir=args.xsd_dir,
    )
    print(summary_table(result.manifest))
    out = Path(args.out)
    if result.nothing_to_file:
        print(f"nothing to file; manifest: {out / 'manifest.json'}")
    else:
        print(f"XML files under {out}/<authority>/, manifest: {out / 'manifest.json'}")
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
    return 0


def _explain(args: argparse.Namespace) -> int:
    from reporting.explain import explain_seller

    print(explain_seller(args.out, args.seller, args.year, show_personal_data=args.show_personal_data))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from reporting.authorities import EU_GENERIC, profile_for
    from reporting.preflight import EU_EXCHANGE, NotEuDpiMessageError, check_message
    from reporting.validate import load_schema, validate_file

    profile = profile_for(args.authority.upper()) if args.authority else EU_GENERIC
    main_xsd = profile.official_schema(args.xsd_dir)
    if not main_xsd.is_file():
        raise ConfigError(f"--xsd-dir {args.xsd_dir}: no {main_xsd.name} there")
    schema = load_schema(str(main_xsd))
    rules = profile.rule_set if args.authority else EU_EXCHANGE
    bad = 0
    for f in args.files:
        if not Path(f).is_file():
            print(f"{f}: no such file")
            bad += 1
            continue
        errors = validate_file(f, schema)
        for e in errors:
            print(f"{f}:{e.line}: {e.message}")
        findings = []
        if args.rules:
            try:
                if rules.codes:  # the EU rules; a national edition may bring only its own checks
                    findings = check_message(
                        f, rules=rules, receiving_country=args.authority.upper() if args.authority else None
                    )
                findings += profile.extra_checks(Path(f)) if args.authority and not errors else []
            except (NotEuDpiMessageError, ValueError) as exc:
                print(f"{f}: {exc}")
                bad += 1
                continue
            for finding in findings:
                print(f"{f}: {finding.describe()}")
        failed = bool(errors) or any(x.severity == "error" for x in findings)
        bad += failed
        if not failed:
            print(f"{f}: valid" + (f" ({rules.name} rules)" if args.rules else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
