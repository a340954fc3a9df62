"""Regenerate the examples: a small source database and the XML filing of every authority profile.

    .venv/bin/python examples/make_examples.py             # rewrites examples/marketplace.db and examples/xml/
    .venv/bin/python examples/make_examples.py --into DIR  # writes the same files under DIR instead

`make examples` runs the first form. The database is `dac7 demo-data` with a small `--sellers`;
each profile is one `dac7 run` of the same database with its configuration (`examples/dac7.toml`,
`examples/profiles/*.toml`), a fixed run id (`--run-id`) and a fixed message timestamp
(`--timestamp`), so the XML is the same bytes on every machine. Staging and the filing ledger of
each run live in a temporary directory: a fresh ledger makes every run an initial filing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent

SELLERS = 40
SEED = 7
YEAR = 2025
AS_OF = date(2026, 1, 15)
RUN_ID = "0e7a1f4c-2b5d-4c8e-9f3a-6d1b7c2e5a90"
TIMESTAMP = datetime(2026, 1, 15, 6, 0, 0, tzinfo=UTC)

#: profile -> its configuration: the EU generic edition (a filing in Lithuania), each national one,
#: and the United Kingdom's (the OECD Model Rules).
PROFILES = {
    "eu": EXAMPLES / "dac7.toml",
    "de": EXAMPLES / "profiles" / "de.toml",
    "fr": EXAMPLES / "profiles" / "fr.toml",
    "gb": EXAMPLES / "profiles" / "gb.toml",
    "hu": EXAMPLES / "profiles" / "hu.toml",
    "it": EXAMPLES / "profiles" / "it.toml",
}


def make_database(path: Path) -> str:
    """`dac7 demo-data` into a new SQLite file; returns its URL."""
    from reporting.cli import main

    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    args = ["demo-data", "--db", url, "--sellers", str(SELLERS), "--seed", str(SEED), "--year", str(YEAR)]
    if main(args) != 0:
        raise SystemExit("dac7 demo-data failed")
    return url


def run_profile(profile: str, source_url: str, target: Path, work: Path) -> list[Path]:
    """One run of a profile's configuration; copies its XML files into ``target`` and returns them."""
    from reporting.cli import main
    from reporting.pipeline import load_manifest

    out = work / "out"
    args = ["run", "--config", str(PROFILES[profile]), "--source", source_url, "--year", str(YEAR)]
    args += ["--as-of", AS_OF.isoformat(), "--out", str(out), "--staging", str(work / "staging")]
    args += ["--ledger", f"sqlite:///{work / 'ledger.sqlite3'}"]
    args += ["--run-id", RUN_ID, "--timestamp", TIMESTAMP.isoformat()]
    if main(args) != 0:
        raise SystemExit(f"dac7 run failed for the {profile} profile")
    manifest = load_manifest(out)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in manifest["files"]:
        produced = work / "out" / entry["file"]
        copy = target / produced.name
        shutil.copyfile(produced, copy)
        copy.chmod(0o644)
        written.append(copy)
    return written


def make_examples(into: Path) -> list[Path]:
    """The database and every profile's XML under ``into`` (``marketplace.db``, ``xml/<profile>/``)."""
    into.mkdir(parents=True, exist_ok=True)
    source_url = make_database(into / "marketplace.db")
    shutil.rmtree(into / "xml", ignore_errors=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="dac7-examples-") as scratch:
        for profile in PROFILES:
            work = Path(scratch) / profile
            written += run_profile(profile, source_url, into / "xml" / profile, work)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--into", type=Path, default=EXAMPLES, help="where to write (default: examples/)")
    args = parser.parse_args(argv)
    for path in make_examples(args.into):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
