"""Log lines name their period, stage and authority (``reporting.logcontext``): as attributes of
the records, as a prefix of the CLI's lines, in the message text where a handler would drop the
attributes (Airflow's structlog); nested and concurrent contexts never leak; no personal data."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from builders import Marketplace, write_config

from reporting import pipeline
from reporting.logcontext import CLI_FORMAT, StageContextFilter, current, install, stage_context

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "0c4f2d1e-6b7a-4c3d-8e9f-a0b1c2d3e4f5"


class ListHandler(logging.Handler):
    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.messages: list[str] = []  # as emitted (a later handler may change the record)
        self.lines: list[str] = []
        if fmt:
            self.setFormatter(logging.Formatter(fmt))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.messages.append(record.getMessage())
        self.lines.append(self.format(record))


@pytest.fixture
def handler() -> Iterator[ListHandler]:
    """A handler that shows the context itself (the CLI's format), on the ``reporting`` logger."""
    h = ListHandler(CLI_FORMAT)
    install([h])
    logger = logging.getLogger("reporting")
    before = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(h)
    yield h
    logger.removeHandler(h)
    logger.setLevel(before)


def context_of(record: logging.LogRecord) -> tuple[str | None, str | None, str | None]:
    return (record.dac7_period, record.dac7_stage, record.dac7_authority)  # type: ignore[attr-defined]


def test_records_inside_a_stage_carry_the_context(handler: ListHandler) -> None:
    log = logging.getLogger("reporting.somewhere.deep")
    log.info("before")
    with stage_context(stage="render", period=2025, authority="DE") as ctx:
        assert current() == ctx
        log.info("rendered %d message(s)", 2)
    log.info("after")
    assert [context_of(r) for r in handler.records] == [(None, None, None), ("2025", "render", "DE"), (None,) * 3]
    assert handler.lines[1].endswith("reporting.somewhere.deep: [2025 render DE] rendered 2 message(s)")
    assert handler.lines[0].endswith("reporting.somewhere.deep: before")
    assert current() is None


def test_other_loggers_get_no_context(handler: ListHandler) -> None:
    other = ListHandler(CLI_FORMAT)
    install([other])
    logger = logging.getLogger("sqlalchemy.not_ours")
    logger.addHandler(other)
    try:
        with stage_context(stage="extract", period=2025):
            logger.warning("a library's line")
    finally:
        logger.removeHandler(other)
    assert context_of(other.records[0]) == (None, None, None)
    assert other.lines[0].endswith("sqlalchemy.not_ours: a library's line")


def test_nested_contexts_restore_the_outer_one(handler: ListHandler) -> None:
    log = logging.getLogger("reporting.pipeline")
    with stage_context(stage="publish", period=2025):
        log.info("outer")
        with stage_context(stage="publish", period=2025, authority="FR"):
            log.info("inner")
        log.info("outer again")
    assert [context_of(r) for r in handler.records] == [
        ("2025", "publish", None),
        ("2025", "publish", "FR"),
        ("2025", "publish", None),
    ]
    assert [line.split(": ", 1)[1] for line in handler.lines] == [
        "[2025 publish] outer",
        "[2025 publish FR] inner",
        "[2025 publish] outer again",
    ]


def test_threads_keep_their_own_context(handler: ListHandler) -> None:
    log = logging.getLogger("reporting.stages.render")
    barrier = threading.Barrier(3)

    def stage(authority: str) -> None:
        with stage_context(stage="render", period=2025, authority=authority):
            barrier.wait()  # all three inside their context at once
            log.info("%s working", authority)
            barrier.wait()
            log.info("%s done", authority)

    def outside() -> None:
        barrier.wait()
        log.info("no stage here")
        barrier.wait()

    threads = [threading.Thread(target=stage, args=(a,)) for a in ("DE", "FR")]
    threads.append(threading.Thread(target=outside))
    with stage_context(stage="plan", period=2024):  # the starting thread's context stays its own
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        logging.getLogger("reporting.plan").info("main thread")
    seen = {(m.split()[0], context_of(r)) for m, r in zip(handler.messages, handler.records, strict=True)}
    assert seen == {
        ("DE", ("2025", "render", "DE")),
        ("FR", ("2025", "render", "FR")),
        ("no", (None, None, None)),  # a new thread starts without a context: nothing leaks into it
        ("main", ("2024", "plan", None)),
    }


def test_a_handler_that_drops_attributes_gets_the_context_in_the_message_once() -> None:
    """As Airflow's structlog formatter does: it keeps the message and drops other attributes.
    With a handler that shows the prefix beside it, no line shows the context twice."""
    plain = ListHandler("%(name)s %(message)s")  # names no dac7_ attribute
    shown = ListHandler(CLI_FORMAT)
    install([plain, shown])
    assert [type(f) for f in plain.filters] == [StageContextFilter] and plain.filters[0].in_message  # type: ignore[attr-defined]
    install([plain, shown])  # once only
    assert len(plain.filters) == len(shown.filters) == 1
    logger = logging.getLogger("reporting.checks.schema")
    logger.setLevel(logging.INFO)
    try:
        for order in ((plain, shown), (shown, plain)):
            for h in order:
                logger.addHandler(h)
            try:
                with stage_context(stage="validate", period=2025, authority="IT"):
                    logger.info("100%% valid: %s", "IT.xml")
            finally:
                for h in order:
                    logger.removeHandler(h)
    finally:
        logger.setLevel(logging.NOTSET)
    assert plain.lines == ["reporting.checks.schema [2025 validate IT] 100% valid: IT.xml"] * 2
    assert [line.split(": ", 1)[1] for line in shown.lines] == ["[2025 validate IT] 100% valid: IT.xml"] * 2


def test_context_values_are_codes_only() -> None:
    with stage_context(stage="render\n[fake]", period="2025 %s", authority="D E") as ctx:
        assert ctx.tag == "[2025__s render__fake_ D_E]"


# --- the pipeline's stages and the CLI -------------------------------------------------------------

NAMES = ("Aurelija", "Zaliauskiene", "Benediktas", "Vaitkevicius")
TINS = ("38001019999", "38102029998")
IBAN = "LT601010012345678901"


def marketplace() -> Marketplace:
    m = Marketplace()
    m.seller("S1", first_name=NAMES[0], last_name=NAMES[1], tin=TINS[0])
    m.account("S1", IBAN, holder=f"{NAMES[0]} {NAMES[1]}")
    m.sales("S1", 35, 100_00)
    m.seller("S2", country="DE", first_name=NAMES[2], last_name=NAMES[3], tin=TINS[1])
    m.sales("S2", 35, 100_00)
    m.seller("S3")
    m.sales("S3", 2, 10_00)  # de minimis
    return m


def test_every_stage_tags_its_records(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The stages as the Airflow tasks call them: period from the run's settings, the authority
    of the per-authority stages."""
    url = marketplace().write(f"sqlite:///{tmp_path}/source.db")
    with caplog.at_level(logging.INFO, logger="reporting"):
        run_dir = pipeline.prepare(
            # a preview: one authority per state of residence, each stage per authority tagged
            config_path=write_config(tmp_path / "dac7.toml", routing="jurisdiction"),
            year=2025,
            out_dir=tmp_path / "out",
            as_of=date(2026, 1, 31),
            staging_root=tmp_path / "staging",
            run_id=RUN_ID,
            source_url=url,
            ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        )
        pipeline.extract(run_dir, url)
        pipeline.aggregate(run_dir)
        pipeline.apply_rules(run_dir)
        authorities = pipeline.plan(run_dir)
        assert authorities == ["DE", "LT"]
        for a in authorities:
            pipeline.render(run_dir, a)
            pipeline.validate(run_dir, a)
        for a in authorities:
            pipeline.publish(run_dir, a)
        pipeline.finalize(run_dir)
    ours = [r for r in caplog.records if r.name.startswith("reporting.")]
    assert all(getattr(r, "dac7_period", None) == "2025" for r in ours)  # every stage, prepare too
    done = {context_of(r)[1:] for r in ours if r.name == "reporting.pipeline" and " done in " in r.getMessage()}
    assert done == {
        ("prepare", None),
        ("extract", None),
        ("aggregate", None),
        ("rules", None),
        ("audit", None),
        ("plan", None),
        *((s, a) for s in ("render", "validate", "publish") for a in ("DE", "LT")),
        ("finalize", None),
    }
    [validate_de] = [
        r for r in ours if r.name == "reporting.stages.validate" and "validate year=2025 authority=DE" in r.getMessage()
    ]
    assert context_of(validate_de) == ("2025", "validate", "DE")
    # pytest's handler does not show dac7_prefix: the context went into the message
    assert validate_de.getMessage().startswith("[2025 validate DE] validate year=2025 authority=DE")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert not [v for v in (*NAMES, *TINS, IBAN) if v in text]


def test_a_cli_run_prefixes_its_log_lines(tmp_path: Path) -> None:
    url = marketplace().write(f"sqlite:///{tmp_path}/source.db")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reporting.cli",
            "-v",
            "run",
            "--config",
            str(write_config(tmp_path / "dac7.toml")),
            "--source",
            url,
            "--year",
            "2025",
            "--as-of",
            "2026-01-31",
            "--out",
            str(tmp_path / "out"),
            "--staging",
            str(tmp_path / "staging"),
            "--ledger",
            f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
            "--run-id",
            RUN_ID,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if " reporting." in line]
    assert lines
    stages = {}
    for line in lines:
        name, _, message = line.partition(": ")
        assert message.startswith("[2025 "), line  # every line of the package names its period and stage
        assert "] [" not in message, line  # once
        stages[message[1:].split("]")[0]] = name
    expected = {f"2025 {stage}" for stage in ("prepare", "extract", "aggregate", "rules", "render", "publish")}
    assert expected <= set(stages)  # the CLI's publish of every authority finalizes inside "publish"
    assert any(re.search(r" reporting\.pipeline: \[2025 rules\] rules done in \d+\.\d\d s$", line) for line in lines)
    everything = done.stderr + done.stdout
    assert not [v for v in (*NAMES, *TINS, IBAN) if v in everything]
