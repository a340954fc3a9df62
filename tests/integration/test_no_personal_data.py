"""No TIN, IBAN, VAT id, business registration number or birth date in clear outside the XML.

A demo marketplace is generated and every such value of its sellers is read back from the source
database (birth dates in four spellings, IBANs also in groups of four): these are the secrets.
Then everything a run says to people or to other programs is searched for them:

- the stdout and stderr of ``dac7 run``, ``dac7 summary`` and ``dac7 explain`` (subprocesses),
- every record emitted through Python logging at DEBUG level (a handler on the root logger),
- the summaries the stages return (what Airflow keeps as XCom values),
- every file under the output's ``reports/`` directory (raw bytes, and Parquet cell by cell) and
  ``manifest.json``,
- the message and the formatted traceback of every error the stages raise over copies of the
  source made bad on purpose, and the CLI's stderr over the same copies.

The XML files, the seller statements (``statements/``: the information reported, in full, for the
seller) and the staging directory hold personal data by design and are not searched. A
masked value (``***182``) is fine: only the full value counts. Values shorter than
``MIN_LENGTH`` are skipped (they would match by chance); names are checked apart, whole words
only, from ``MIN_LENGTH`` characters. The Airflow side (task logs, XComs) is in
``tests/dags/test_no_personal_data_airflow.py``, which imports the helpers of this module.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import re
import shutil
import sqlite3
import subprocess
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from builders import write_config

from dac7_demo import generate_demo
from reporting import pipeline
from reporting.errors import DataError, SourceContractError, XmlValidationError

YEAR = 2025
AS_OF = "2026-01-14"
RUN_ID = "3d5e0c1a-7b2f-4e8d-9c6a-1f0e2d3c4b5a"
TIMESTAMP = datetime(2026, 1, 15, 6, 0, 0)
SELLERS = 300
SEED = 7
MIN_LENGTH = 6  # shorter values would be found by chance
MIN_SECRETS = 500  # the run must be checked against hundreds of values, not a handful
BIRTH_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%Y%m%d", "%d/%m/%Y")
FR_TABLE = '\n[authorities.FR]\nsiren = "123456789"\n'


# --- the secrets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
    """Clear values of the source, each with what it is."""

    values: dict[str, str]  # TINs, accounts, VAT ids, registration numbers, birth dates
    names: dict[str, str]  # first, last, legal and account holder names
    skipped: int  # values shorter than MIN_LENGTH, not checked

    def describe(self) -> str:
        kinds = Counter(self.values.values())
        return (
            f"{len(self.values)} identifiers and birth dates checked ("
            + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
            + f"), {len(self.names)} names checked, {self.skipped} values under {MIN_LENGTH} characters skipped"
        )


def read_secrets(*databases: Path) -> Secrets:
    """Every TIN, account identifier, VAT id, business registration number and birth date (and
    every name) of the sellers in the SQLite sources: what a run over them reads."""
    found: dict[str, str] = {}
    names: dict[str, str] = {}
    for db in databases:
        with closing(sqlite3.connect(db)) as con:
            for (tin,) in con.execute("select tin from seller_tins"):
                found[str(tin)] = "tin"
            for ident, holder in con.execute("select identifier, account_holder_name from seller_financial_accounts"):
                found.update(dict.fromkeys(account_spellings(str(ident)), "account"))
                if holder:
                    names[holder] = "account holder"
            present = {row[1] for row in con.execute("pragma table_info(sellers)")}
            wanted = ("vat_id", "business_registration_number", "birth_date", "first_name", "last_name", "legal_name")
            columns = ", ".join(c if c in present else "null" for c in wanted)  # a source made bad may lack one
            for vat, brn, born, first, last, legal in con.execute(f"select {columns} from sellers"):
                if vat:
                    found.setdefault(vat, "vat")
                if brn:
                    found.setdefault(brn, "business registration number")
                if born:
                    found.update(dict.fromkeys(birth_date_spellings(str(born)), "birth date"))
                for value, kind in ((first, "first name"), (last, "last name"), (legal, "legal name")):
                    if value:
                        names[value] = kind
                if first and last:
                    names[f"{first} {last}"] = "full name"
    short = [v for v in (*found, *names) if len(v.strip()) < MIN_LENGTH]
    return Secrets(
        values={v: k for v, k in found.items() if len(v.strip()) >= MIN_LENGTH},
        names={v: k for v, k in names.items() if len(v.strip()) >= MIN_LENGTH},
        skipped=len(short),
    )


def account_spellings(stored: str) -> list[str]:
    """The identifier as stored, compact, and in the groups of four in which IBANs are printed."""
    compact = "".join(stored.split()).upper()
    return [stored, compact, " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))]


def birth_date_spellings(stored: str) -> list[str]:
    """The date in the four spellings; a value that is no ISO date (a source made bad on
    purpose) as it is stored."""
    try:
        day = date.fromisoformat(stored[:10])
    except ValueError:
        return [stored]
    return [day.strftime(fmt) for fmt in BIRTH_DATE_FORMATS]


# --- the search -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leak:
    where: str
    kind: str
    value: str
    context: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind} {self.value!r} in ...{self.context!r}..."


_DIGIT_RUNS = re.compile("[0-9]+")


def _glued(text: str, start: int, end: int, value: str, *, words: bool) -> bool:
    """True when the hit is part of a longer token: digits on a digit edge (an amount that
    happens to contain the digits of a birth date), letters too for names (whole words)."""

    def joins(a: str, b: str) -> bool:
        return (a.isdigit() and b.isdigit()) or (words and a.isalnum() and b.isalnum())

    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return bool(before and joins(before, value[0])) or bool(after and joins(value[-1], after))


def find_leaks(texts: Mapping[str, str], secrets: Mapping[str, str], *, words: bool = False) -> list[Leak]:
    """The first hit of each secret in each text. A secret of digits only is a hit exactly when
    it is a whole run of digits in the text, so those are looked up in the set of the text's
    digit runs (one pass); the others are searched one by one."""
    digits = {v: k for v, k in secrets.items() if v.isascii() and v.isdigit()}
    others = {v: k for v, k in secrets.items() if v not in digits}
    leaks = []
    for where, text in texts.items():
        for value in sorted(digits.keys() & set(_DIGIT_RUNS.findall(text))):
            hit = re.search(rf"(?<![0-9]){value}(?![0-9])", text)
            assert hit is not None
            leaks.append(Leak(where, digits[value], value, text[max(0, hit.start() - 60) : hit.end() + 30]))
        for value, kind in others.items():
            start = text.find(value)
            while start != -1:
                end = start + len(value)
                if not _glued(text, start, end, value, words=words):
                    leaks.append(Leak(where, kind, value, text[max(0, start - 60) : end + 30]))
                    break
                start = text.find(value, start + 1)
    return leaks


def assert_no_personal_data(texts: Mapping[str, str], secrets: Secrets) -> None:
    """Fail with every value found in clear; identifiers and names are listed apart."""
    assert texts, "nothing was captured to search"
    assert len(secrets.values) >= MIN_SECRETS, secrets.describe()
    leaks = find_leaks(texts, secrets.values)
    named = find_leaks(texts, secrets.names, words=True)
    size = sum(len(t) for t in texts.values())
    message = [f"searched {len(texts)} texts ({size} characters); {secrets.describe()}"]
    if leaks:
        message.append(f"{len(leaks)} identifier(s) or birth date(s) in clear:")
        message += [f"  {leak}" for leak in leaks[:25]]
    if named:
        message.append(f"{len(named)} name(s) in clear:")
        message += [f"  {leak}" for leak in named[:25]]
    assert not leaks and not named, "\n".join(message)


# --- what a run leaves behind -----------------------------------------------------------------


def _cells(value: Any) -> Iterator[str]:
    """A Parquet cell as text: nested lists and structs flattened, dates in ISO form."""
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _cells(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _cells(v)
    elif isinstance(value, (date, datetime)):
        yield value.isoformat()
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "surrogateescape")
    else:
        yield str(value)


def parquet_text(path: Path) -> str:
    table = pq.read_table(path)
    lines = [str(table.schema), str(table.schema.metadata or "")]
    for name in table.column_names:
        lines.extend(c for v in table.column(name).to_pylist() for c in _cells(v))
    return "\n".join(lines)


#: Fonts and images that come with Great Expectations' Data Docs: nothing of a run is in them.
ASSETS = frozenset({".otf", ".ttf", ".woff", ".woff2", ".eot", ".gif", ".png", ".jpg", ".jpeg", ".ico"})


def published_texts(out: Path, label: str) -> dict[str, str]:
    """Every file under ``<out>/reports/`` (Data Docs included, bar their fonts and images) and
    ``manifest.json``: raw bytes as text, Parquet cell by cell, HTML unescaped too. The XML
    files are not part of the search."""
    files = sorted(p for p in (out / "reports").rglob("*") if p.is_file() and p.suffix.lower() not in ASSETS)
    assert files, f"{out}/reports holds no file"
    files.append(out / "manifest.json")
    texts = {}
    for path in files:
        name = f"{label}: {path.relative_to(out)}"
        raw = path.read_bytes()
        texts[name] = raw.decode("utf-8", "surrogateescape")
        if path.suffix == ".parquet":
            texts[f"{name} (cells)"] = parquet_text(path)
        elif path.suffix in (".html", ".htm"):
            texts[f"{name} (unescaped)"] = html.unescape(raw.decode("utf-8", "replace"))
    return texts


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines
        # the formatted record includes the exception text and the stack of exc_info records
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record whose message cannot be built: keep its parts
            self.lines.append(f"{record.levelname} {record.name}: {record.msg!r} {record.args!r}")


@contextmanager
def debug_logging() -> Iterator[list[str]]:
    """Everything logged through Python logging, DEBUG and up, while the block runs."""
    lines: list[str] = []
    handler = _Collect(lines)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def error_texts(label: str, exc: BaseException) -> dict[str, str]:
    return {
        f"{label}: str(exception)": str(exc),
        f"{label}: traceback": "".join(traceback.format_exception(exc)),
    }


@dataclass
class StageRun:
    """What an in-process run left: the stage that failed and its error, and the texts."""

    out: Path
    failed: str | None = None
    error: BaseException | None = None
    texts: dict[str, str] = field(default_factory=dict)


def run_stages(
    label: str, *, config: Path, source: Path, out: Path, staging: Path, environment: str | None = None
) -> StageRun:
    """prepare, then every stage of ``reporting.pipeline`` in order, in this process, as the
    Airflow tasks call them; the first error stops the run (and is kept, not raised)."""
    url = f"sqlite:///{source}"
    stages: list[tuple[str, Callable[[str], Any]]] = [
        ("extract", lambda d: pipeline.extract(d, url)),
        ("aggregate", pipeline.aggregate),
        ("apply_rules", pipeline.apply_rules),
        ("render", pipeline.render),
        ("validate", pipeline.validate),
        ("publish", pipeline.publish),
        ("write_statements", pipeline.write_statements),
    ]
    result = StageRun(out=out)
    returned: dict[str, Any] = {}
    with debug_logging() as lines:
        run_dir = pipeline.prepare(
            config_path=config,
            year=YEAR,
            out_dir=out,
            as_of=date.fromisoformat(AS_OF),
            environment=environment,
            staging_root=staging,
            run_id=RUN_ID,
            timestamp=TIMESTAMP,
            source_url=url,
            ledger_url=f"sqlite:///{staging}/dac7-ledger.sqlite3",  # its own: the run id is pinned
        )
        returned["prepare"] = run_dir
        for name, stage in stages:
            try:
                returned[name] = stage(run_dir)
            except Exception as exc:  # every error of a stage: its text is searched below
                result.failed, result.error = name, exc
                break
    result.texts[f"{label}: Python logging (DEBUG)"] = "\n".join(lines)
    result.texts[f"{label}: stage return values"] = json.dumps(returned, default=str, ensure_ascii=False)
    if result.error is not None:
        result.texts.update(error_texts(f"{label}: {result.failed}", result.error))
    if (out / "manifest.json").is_file():
        result.texts.update(published_texts(out, label))
    return result


def cli(*args: str) -> subprocess.Popen[str]:
    """``dac7 ARGS`` in a subprocess (started, not awaited)."""
    return subprocess.Popen(
        [sys.executable, "-m", "reporting.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
    )


def cli_output(label: str, proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, dict[str, str]]:
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, {f"{label}: stdout": stdout, f"{label}: stderr": stderr}


def cli_run_args(config: Path, source: Path, out: Path, staging: Path) -> list[str]:
    return [
        "-v",
        "run",
        "--config",
        str(config),
        "--source",
        f"sqlite:///{source}",
        "--year",
        str(YEAR),
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--staging",
        str(staging),
        "--run-id",
        RUN_ID,
        "--ledger",  # its own ledger: it runs beside an in-process run with the same pinned run id
        f"sqlite:///{staging}/dac7-ledger.sqlite3",
    ]


def generate_source(path: Path) -> Path:
    generate_demo(f"sqlite:///{path}", sellers=SELLERS, seed=SEED, year=YEAR)
    return path


# --- sources made bad on purpose --------------------------------------------------------------

# Sellers are picked by their data, so that the choice follows the generated marketplace: the
# busiest sellers of the year are surely reported.
_BUSIEST = (
    "(select t.seller_id from transactions t join sellers s using (seller_id) "
    "where s.seller_type = '{kind}' and t.paid_at >= '2025-02-01' and t.paid_at < '2025-12-01' "
    "group by t.seller_id order by count(*) desc, t.seller_id limit 1 offset {nth})"
)


def busiest(kind: str, nth: int = 0) -> str:
    """SQL for the seller id of the ``nth`` busiest seller of a kind in the year."""
    return _BUSIEST.format(kind=kind, nth=nth)


@dataclass(frozen=True)
class Scenario:
    name: str
    statements: tuple[str, ...]  # SQLite statements that break a copy of the source
    environment: str  # the run's environment
    raises: type[Exception] | None  # the error some stage must raise; None: the run publishes
    fr_profile: bool = False  # filing in France: the DGFiP edition
    cli: bool = False  # also `dac7 run` in a subprocess, for its stderr

    def config(self, path: Path) -> Path:
        if self.fr_profile:  # the operator files in France
            return write_config(path, environment=self.environment, filing_state="FR", extra=FR_TABLE)
        return write_config(path, environment=self.environment)

    def source(self, clean: Path, path: Path) -> Path:
        shutil.copyfile(clean, path)
        with closing(sqlite3.connect(path)) as con, con:
            for statement in self.statements:
                assert con.execute(statement).rowcount != 0, f"{self.name}: {statement} changed nothing"
        return path


# Defects a seller is quarantined for: a test run publishes without the seller and lists it in
# reports/quarantine.csv, a production run stops at the extract. A payment in an unknown
# currency, a birth date that the extract cannot read (the same date written DD.MM.YYYY, one of
# the secret spellings), a TIN of no country, a birth date before 1900 (EU rule 40130).
SELLER_DEFECTS = (
    "update transactions set currency = 'XXX' where transaction_id = (select min(transaction_id) "
    f"from transactions where seller_id = {busiest('individual')} and paid_at >= '2025-03-01')",
    f"update sellers set birth_date = strftime('%d.%m.%Y', birth_date) where seller_id = {busiest('individual', 1)}",
    f"update seller_tins set issued_by = 'ZZ' where seller_id = {busiest('individual', 2)}",
    f"update sellers set birth_date = '1850' || substr(birth_date, 5) where seller_id = {busiest('individual', 3)}",
)

#: A production run stops at the extract: its error lists every finding of the bad sellers.
PROD_QUARANTINE = Scenario("quarantined sellers, production run", SELLER_DEFECTS, "prod", DataError, cli=True)

#: The DGFiP schema refuses a line break in an identification number (IN): the validate stage
#: fails with the schema errors. (For a French entity the registration number is its SIREN, also
#: its TIN.)
FR_LINE_BREAK = Scenario(
    "line break in the registration numbers of French entities (FR profile)",
    (
        "update sellers set business_registration_number = business_registration_number || char(10) || 'FR' "
        "where seller_type = 'entity' and residence_country = 'FR' and business_registration_number is not null",
    ),
    "test",
    XmlValidationError,
    fr_profile=True,
)

SCENARIOS = (
    Scenario("quarantined sellers, test run", SELLER_DEFECTS, "test", None),
    PROD_QUARANTINE,
    Scenario(
        # both quarantined by the rules stage (identity checks, what the XML cannot carry), which a
        # production run does not accept
        "seller without address, entity without name, production run",
        (
            "update sellers set address_street = null, address_building = null, address_post_code = null, "
            f"address_city = null where seller_id = {busiest('individual', 4)}",
            f"update sellers set legal_name = null where seller_id = {busiest('entity')}",
        ),
        "prod",
        DataError,
    ),
    Scenario(
        "broken extract: a contract column missing",
        ("alter table sellers drop column vat_id",),
        "test",
        SourceContractError,
    ),
    FR_LINE_BREAK,
)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_source(tmp_path_factory.mktemp("source") / "marketplace.db")


@pytest.fixture(scope="module")
def secrets(source: Path) -> Secrets:
    return read_secrets(source)


@pytest.fixture(scope="module")
def good_run(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The texts of a clean run, per channel: the CLI (run, summary, explain), the in-process
    stages (DEBUG logs, return values) and the published reports of both runs."""
    tmp = tmp_path_factory.mktemp("good")
    config = write_config(tmp / "dac7.toml")
    cli_out = tmp / "cli-out"
    proc = cli(*cli_run_args(config, source, cli_out, tmp / "cli-staging"))  # runs beside the in-process run
    stages = run_stages("in-process", config=config, source=source, out=tmp / "out", staging=tmp / "staging")
    code, cli_texts = cli_output("dac7 run", proc)
    assert code == 0, cli_texts
    assert stages.error is None, "".join(traceback.format_exception(stages.error))

    procs = {"dac7 summary": cli("summary", "--out", str(cli_out))}
    for seller in explained_sellers(cli_out / "reports" / "decisions.csv", source):
        procs[f"dac7 explain {seller}"] = cli(
            "-v", "explain", "--seller", seller, "--year", str(YEAR), "--out", str(cli_out)
        )
    for label, proc in procs.items():
        code, texts = cli_output(label, proc)
        assert code == 0, texts
        if label.startswith("dac7 explain"):
            assert "Identity (masked" in texts[f"{label}: stdout"], texts
        cli_texts |= texts

    reports = {k: v for k, v in stages.texts.items() if ": reports/" in k or k.endswith("manifest.json")}
    return {
        "CLI stdout and stderr": cli_texts,
        "Python logging (DEBUG) and stage return values": {k: v for k, v in stages.texts.items() if k not in reports},
        "reports and manifest": reports | published_texts(cli_out, "dac7 run"),
    }


def explained_sellers(decisions: Path, source: Path) -> list[str]:
    """A seller per decision and seller type, and the sellers with the most TINs and accounts."""
    with decisions.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked: dict[tuple[str, str], str] = {}
    for row in rows:
        picked.setdefault((row["decision"], row["seller_type"]), row["seller_id"])
    with closing(sqlite3.connect(source)) as con:
        for table in ("seller_tins", "seller_financial_accounts"):
            (most,) = con.execute(
                f"select seller_id from {table} group by seller_id order by count(*) desc, seller_id limit 1"
            ).fetchone()
            picked[(table, "")] = most
    return sorted(set(picked.values()))


# --- tests ------------------------------------------------------------------------------------


def test_hundreds_of_values_are_checked(secrets: Secrets) -> None:
    kinds = Counter(secrets.values.values())
    assert len(secrets.values) >= MIN_SECRETS, secrets.describe()
    for kind in ("tin", "account", "vat", "business registration number", "birth date"):
        assert kinds[kind] >= 20, secrets.describe()
    assert len(secrets.names) >= 100, secrets.describe()


def test_the_search_finds_clear_values_only() -> None:
    """The search itself: a full value is found, a masked one or a longer number is not."""
    secrets = Secrets(
        values={"0591682483182": "tin", "FR7630006000011234567890189": "account", "19670120": "birth date"},
        names={"Jules Moreau": "full name", "Moreau": "last name"},
        skipped=0,
    )
    texts = {
        "clear": "seller S1: TIN '0591682483182' issued by FR",
        "masked": "TIN ***182 (FR), account ***189, J**** M*****",
        "amount": "consideration_minor 1196701205",
        "glued": "IBAN=FR7630006000011234567890189;",
        "name": "<td>Jules Moreau</td> Moreaux",
    }
    found = {(leak.where, leak.value) for leak in find_leaks(texts, secrets.values)}
    assert found == {("clear", "0591682483182"), ("glued", "FR7630006000011234567890189")}
    named = {(leak.where, leak.value) for leak in find_leaks(texts, secrets.names, words=True)}
    assert named == {("name", "Jules Moreau"), ("name", "Moreau")}


CHANNELS = ("CLI stdout and stderr", "Python logging (DEBUG) and stage return values", "reports and manifest")


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_clean_run_shows_no_personal_data(
    good_run: dict[str, dict[str, str]], secrets: Secrets, channel: str
) -> None:
    assert_no_personal_data(good_run[channel], secrets)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_errors_over_bad_data_show_no_personal_data(scenario: Scenario, source: Path, tmp_path: Path) -> None:
    config = scenario.config(tmp_path / "dac7.toml")
    bad = scenario.source(source, tmp_path / "bad.db")
    paths = {"out": tmp_path / "out", "staging": tmp_path / "staging"}
    proc = cli(*cli_run_args(config, bad, tmp_path / "cli-out", tmp_path / "cli-staging")) if scenario.cli else None
    run = run_stages(scenario.name, config=config, source=bad, environment=scenario.environment, **paths)
    texts = dict(run.texts)
    if proc is not None:
        code, cli_texts = cli_output("dac7 run", proc)
        assert code != 0 and "dac7: " in cli_texts["dac7 run: stderr"], cli_texts
        texts |= cli_texts
    if scenario.raises is None:
        assert run.error is None, "".join(traceback.format_exception(run.error))
        with (run.out / "reports" / "quarantine.csv").open(encoding="utf-8", newline="") as fh:
            quarantined = {row["seller_id"] for row in csv.DictReader(fh)}
        assert len(quarantined) >= 3, quarantined
    else:
        assert isinstance(run.error, scenario.raises), f"expected {scenario.raises.__name__}, got {run.error!r}"
    # the personal data of the bad copy too (a birth date written otherwise is another value)
    assert_no_personal_data(texts, read_secrets(source, bad))
