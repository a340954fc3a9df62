"""Settings, period, Params and retries of the DAC7 DAGs (wiring only: the rules are in ``reporting``)."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, Param, RetryAction, RetryRule

from reporting.countries import COUNTRY_NAMES, EU_MEMBER_STATES
from reporting.errors import PermanentError
from reporting.vocabulary import (  # a leaf: nothing heavy at parse time
    DEFAULT_OPERATOR,
    ENVIRONMENTS,
    MODES,
    OPERATOR_ID_PATTERN,
    PROD,
    TEST,
)

log = logging.getLogger("dac7")

REPO = Path(__file__).resolve().parents[2]
RUN_NAMESPACE = uuid.UUID("5f2b8a4e-1c7d-5e0a-9b3f-6d0c2e8a7b41")  # fixed: run ids stay stable
FIRST_YEAR = 2023  # DAC7 applies from the reporting period 2023
EU_STATES = tuple(sorted(EU_MEMBER_STATES))

#: Retries for the steps that reach a database (the source, the filing ledger): a connection lost,
#: a ledger lock held by another run, a concurrent load that changed the counts. Twice, after about
#: 1 and 2 minutes (``retry_exponential_backoff`` is a multiplier since Airflow 3.3: ``True``
#: would mean 1.0 for an operator used unserialised, as in ``dag.test()``). A
#: ``reporting.errors.PermanentError`` (bad rows, a broken contract, a configuration or ledger-mode
#: error, invalid XML) fails at once: waiting does not change the input.
RETRY: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "retry_policy": ExceptionRetryPolicy(
        rules=[
            RetryRule(
                exception=PermanentError,
                action=RetryAction.FAIL,
                reason="a permanent error: the input or the configuration must change first",
            )
        ]
    ),
}


def staging_root() -> str:
    """This worker's local staging root: ``DAC7_STAGING_DIR``, else ``.dac7/staging`` in the repo."""
    return os.environ.get("DAC7_STAGING_DIR") or str(REPO / ".dac7" / "staging")


def source_pool() -> str:
    """The Airflow pool of the tasks that read the source database (extract): ``DAC7_SOURCE_POOL``
    as the DAG processor sees it, else ``default_pool``. A pool of one or two slots keeps the
    marketplace's database from serving several extracts at once (a rerun beside the quarterly
    preview): ``airflow pools set dac7_source 1 "DAC7 source database"``. A pool that does not
    exist keeps the task from being scheduled: create it before naming it here."""
    return os.environ.get("DAC7_SOURCE_POOL") or "default_pool"


#: The pool the due-diligence verification is meant to run in: one slot, so that no two batches
#: call VIES or TIN on the Web at once (each counts its rate limit in its own process).
VERIFICATION_POOL = "dac7_verification"


def verification_pool() -> str:
    """The Airflow pool of the due-diligence verification (``verify``): ``DAC7_VERIFICATION_POOL``
    as the DAG processor sees it, else ``default_pool``. Create the one-slot pool first, then
    name it: ``airflow pools set dac7_verification 1 "DAC7 verification (VIES, TIN on the Web)"``
    and ``DAC7_VERIFICATION_POOL=dac7_verification``. A pool that does not exist keeps the task
    from being scheduled, so an unnamed one falls back to the default pool (the task takes one
    slot and the operators of a group still run one at a time: ``max_active_tis_per_dagrun``)."""
    return os.environ.get("DAC7_VERIFICATION_POOL") or "default_pool"


def settings_from_env() -> dict[str, str | None]:
    """Where the config, source, output and staging are: environment first, repo defaults next.

    The source may be an Airflow Connection (``DAC7_SOURCE_CONN_ID``: ``dac7_support.connections``);
    the ledger's URL is resolved apart (``dac7_support.connections.ledger_url``) and passed to the
    pipeline, never kept here. Read when a task runs, never at parse time."""
    from dac7_support.connections import source_url

    env = os.environ
    return {
        "config_path": env.get("DAC7_CONFIG") or str(REPO / "dac7.toml"),
        "source_url": source_url() or None,  # None: the config's [source] url
        "out_dir": env.get("DAC7_OUT_DIR") or str(REPO / "out"),
        "staging_root": staging_root(),
    }


def run_uuid(dag_id: str, run_id: str) -> str:
    """The pipeline's run id: the same Airflow run always gets the same UUID."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{dag_id}/{run_id}"))


def run_date(logical_date: datetime | None, run_after: datetime | None) -> date:
    """The (UTC) day a DAG run stands for: its logical date, else the date it was created for."""
    anchor = logical_date or run_after
    if anchor is None:
        raise ValueError("this run has neither a logical date nor a run_after")
    return anchor.astimezone(UTC).date()


def message_timestamp(dag_run: Any, ti: Any) -> datetime:
    """The message Timestamp of a DAG run's files: the moment the run was created for.

    ``run_after`` is stored with the run (the due time of a scheduled run, the trigger time of a
    manual or REST-triggered one), so every retry, every clear-and-rerun and every worker of the
    same DAG run stamps the same Timestamp and renders the same bytes. Only a run without one
    (never seen in Airflow 3) falls back to the task's start."""
    stamp = getattr(dag_run, "run_after", None) or ti.start_date
    return stamp.astimezone(UTC) if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def reporting_period(
    logical_date: datetime | None, run_after: datetime | None, params: Mapping[str, Any]
) -> tuple[int, date]:
    """The (reporting year, as-of date) of an annual DAG run.

    Year: the ``reporting_year`` Param, else the year before the logical date's year (a run
    due in January 2026 files 2025). As-of: the ``as_of`` Param, else the day before the logical
    date (UTC), else (a manual run without a logical date) the day before the date the run was
    created for (``run_after``, stored with the run): always a day that has ended, so that a
    rerun counts the same refunds. The ``prepare`` task of the annual filing refuses a run
    triggered by hand that leaves the year or the as-of date empty (:func:`period_problems`)
    before it comes here: the defaults serve the scheduled run.
    """
    year = params.get("reporting_year")
    if year is None:
        if logical_date is None:
            raise ValueError(
                "this run has no logical date, so its reporting year cannot be derived: "
                "trigger it again with the reporting_year Param set (e.g. 2025)"
            )
        year = logical_date.astimezone(UTC).year - 1
    as_of = params.get("as_of")
    if as_of:
        as_of_date = date.fromisoformat(as_of)
    else:
        if logical_date is None and run_after is None:
            raise ValueError("this run has neither a logical date nor a run_after: set the as_of Param")
        # The day before: a day that has ended, so a rerun counts the same refunds.
        as_of_date = run_date(logical_date, run_after) - timedelta(days=1)
    return int(year), as_of_date


def conf_problems(
    *,
    year: int,
    as_of: date,
    environment: str,
    mode: str,
    sellers: Sequence[str] | None,
    today: date,
) -> list[str]:
    """What is wrong with a combination of Params that each passed their own schema, one sentence
    per problem (an Airflow Param validates one value; these rules span several).

    ``environment`` is the effective one (the Param, else the configuration's); ``today`` is the
    run's date, never the clock."""
    problems = []
    if year > today.year:
        problems.append(f"The reporting year {year} has not begun yet: choose {today.year} or an earlier year.")
    if as_of >= today:
        problems.append(
            f"The as-of date {as_of.isoformat()} has not ended yet: choose {(today - timedelta(days=1)).isoformat()} "
            "or an earlier day, so that a rerun counts the same refunds."
        )
    if as_of.year < year:
        problems.append(
            f"The as-of date {as_of.isoformat()} is before the reporting year {year} begins: choose a day of "
            f"{year} or later."
        )
    if sellers and mode != "deletion":
        problems.append(
            f"Sellers are named only for a deletion, but mode is {mode!r}: set mode to 'deletion' "
            "or leave sellers empty."
        )
    if mode == "deletion" and not sellers:
        problems.append("Mode 'deletion' needs the sellers to delete: list their seller ids under sellers.")
    if environment == PROD:
        if date(year, 12, 31) > today:
            problems.append(
                f"A production filing for {year} cannot be made before the year has ended (EU rule "
                "10060): choose environment 'test' for a preview."
            )
        if as_of < date(year, 12, 31):
            problems.append(
                f"The as-of date {as_of.isoformat()} is before the end of {year}: a production filing counts "
                f"the refunds of the whole year, so set as_of to {year}-12-31 or later."
            )
    return problems


def period_problems(
    params: Mapping[str, Any], logical_date: datetime | None, conf: Mapping[str, Any] | None = None
) -> list[str]:
    """What a run triggered by hand must name: its reporting year, its as-of date and its
    environment, each chosen by a person. Left empty, the as-of date would be the day before the
    run's logical date, which for a run triggered today counts the refunds made since the year's
    filing and can file corrections that nobody asked for; the environment would be the
    configuration's, which the person who triggers may not know.

    Which runs: a run whose conf names a field but leaves it empty (Airflow's trigger form sends
    every field, with a logical date of the moment it was opened), and a run without a logical
    date that leaves out the year or the as-of date. A scheduled run (conf ``{}``) and a REST
    client that leaves a key out keep the documented defaults: the period of the logical date,
    the configuration's environment."""
    conf = conf or {}
    labels = {"reporting_year": "reporting year", "as_of": "as-of date", "environment": "environment"}
    missing = [
        label
        for key, label in labels.items()
        if not params.get(key) and (key in conf or (logical_date is None and key != "environment"))
    ]
    if not missing:
        return []
    named = " and its ".join(missing) if len(missing) < 3 else "reporting year, its as-of date and its environment"
    return [
        f"A run triggered by hand must name its {named}: choose the reporting year, the environment ('test' "
        "or 'prod'), and as the as-of date 31 December of that year for the year's filing (a later day counts "
        "later refunds and may file corrections)."
    ]


def quarter_problems(year: int, quarter: int, as_of: date, today: date) -> list[str]:
    """What keeps a quarterly watch from running: a quarter that has not ended (its last day is
    ``as_of``; ``today`` is the run's date, never the clock)."""
    if as_of >= today:
        return [
            f"Q{quarter} {year} has not ended yet (it ends on {as_of.isoformat()}): choose a quarter that has "
            "ended, or leave the year and the quarter empty for the last one that ended."
        ]
    return []


# --- Params -------------------------------------------------------------------------------------

#: The names the trigger form shows next to the codes of the member states (values_display).
AUTHORITY_NAMES = {code: COUNTRY_NAMES[code] for code in EU_STATES}

#: What each filing mode files, said plainly: the form's labels and the help text of the mode.
MODE_LABELS = {
    "auto": "auto: file the difference to the ledger (new sellers; corrections where filed figures changed)",
    "new": "new: every reportable seller as new records",
    "correction": "correction: files CORRECTIONS of every seller already filed",
    "deletion": "deletion: files DELETIONS of the sellers named below",
    "nil": "nil report: states that no seller is reportable",
}


def recent_years(today: date) -> list[int]:
    """The reporting years from the first DAC7 year up to ``today``'s year (never called while a
    DAG file is parsed: a form whose choices change with the day would change the DAG's version)."""
    return list(range(FIRST_YEAR, today.year + 1))


def year_param(description: str, *, title: str = "Reporting year", empty: str = "from the run's date") -> Param:
    """A reporting year: a whole number from 2023 (DAC7's first year). The form offers no list of
    years, since a list that grows with the clock would make every parse a new DAG version; a
    year that has not begun is refused when the run starts (``conf_problems``)."""
    return Param(
        None,
        type=["null", "integer"],
        minimum=FIRST_YEAR,
        maximum=2100,
        title=title,
        description=f"{description} Empty: {empty}.",
    )


def annual_params() -> dict[str, Param]:
    """The trigger form of the annual DAG: each field a JSON schema with a label and a help text.

    A value that breaks its schema is refused before the run starts (HTTP 400 from the REST API,
    an error in the form); combinations are checked by the DAC7 view's trigger page before the run
    exists, and again by the ``prepare`` task (:func:`conf_problems`, :func:`period_problems`).
    """
    return {
        "reporting_year": year_param(
            "Calendar year to report (2023 or later). Required for a run triggered by hand.",
            empty="the year before the logical date of a scheduled run (the run of 2026-01-15 reports 2025)",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="As-of date",
            description="Refunds dated after this day (in the configured time zone) are not counted. Required "
            "for a run triggered by hand: 31 December of the reporting year for the year's filing. A later day "
            "counts later refunds, and where filed figures change, 'auto' files corrections. A production "
            "filing needs 31 December of the reporting year or later. Empty: the day before the logical date "
            "of a scheduled run.",
        ),
        "environment": Param(
            None,
            type=["null", "string"],
            enum=[None, *ENVIRONMENTS],
            values_display={
                None: "empty: only a scheduled run (the configuration's)",
                TEST: "test: test data, the ledger's test space",
                PROD: "prod: the real filing, after a second person's approval",
            },
            title="Environment",
            description="'test' marks every record as test data (OECD10-13) and files into the "
            "ledger's test space; 'prod' is the real filing and waits for a second person's "
            "approval. Required for a run triggered by hand. Empty (a scheduled run): the [reporting] "
            "environment of the configuration file, which the DAC7 view's trigger page shows.",
        ),
        "mode": Param(
            "auto",
            type="string",
            enum=list(MODES),
            values_display=MODE_LABELS,
            title="Filing mode",
            description="What this run files. 'auto' (the default) compares the reportable sellers with "
            "the filing ledger and files the difference: new sellers as new records, and a CORRECTION for "
            "every filed seller whose figures changed (a later as-of date counts later refunds). "
            "'correction' files corrections of every seller already filed; 'deletion' withdraws the filed "
            "records of the sellers named below; 'new' and 'nil' force that kind when an authority asks for it.",
        ),
        "sellers": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "minLength": 1, "maxLength": 200},
            uniqueItems=True,
            title="Sellers to delete",
            description="Only with mode 'deletion': the seller ids (the source's seller_id), one per "
            "line, whose filed records are withdrawn. Empty for every other mode.",
        ),
        "authorities": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "enum": list(EU_STATES)},
            uniqueItems=True,
            examples=list(EU_STATES),  # the pick list of the form's multi-select
            values_display={code: f"{code} {AUTHORITY_NAMES[code]}" for code in EU_STATES},
            title="Authorities",
            description="A filing goes to the member state the operator files in, alone (its law "
            "decides every seller): name it, or leave this empty to file when something is due (new "
            "sellers, corrections, deletions, a nil report). Another state is refused. In a preview "
            "(routing 'jurisdiction', test only), the states whose preview to render; empty: all.",
        ),
        "operator": Param(
            None,
            type=["null", "string"],
            pattern=f"^{OPERATOR_ID_PATTERN}$",
            title="Operator",
            description="A group: a configuration with further operators ([operators.ID]) files for every "
            f"operator in one run, each in its own member state. Name one operator ('{DEFAULT_OPERATOR}' is "
            "[operator], the others their ID) to file for it alone: a rerun that touches nothing of the other "
            "operators (their files, ledger and statements). A mode other than 'auto' needs one. Empty: every "
            "operator.",
        ),
    }


# --- the run's outcome ---------------------------------------------------------------------------


def run_outcome(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What a run filed, in counts (never a name, TIN or amount): what ``finalize`` returns, and
    what the run's note on Airflow's run page says (``plugins/dac7_links.py``)."""
    records: dict[str, int] = {}
    for f in manifest["files"]:
        for kind, n in (f.get("records") or {}).items():
            records[kind] = records.get(kind, 0) + int(n)
    stages = (manifest.get("data_checks") or {}).get("stages") or {}
    summary = manifest.get("summary") or {}
    return {
        "environment": manifest.get("environment"),
        "as_of": manifest.get("as_of"),
        "preview": bool(manifest.get("preview")),
        "authorities": sorted({f["authority"] for f in manifest["files"]}),
        "records": records,
        "sellers_read": summary.get("sellers_read", 0),
        "reportable": summary.get("reportable", 0),
        "quarantined": sum(int(st.get("quarantined_sellers") or 0) for st in stages.values()),
        "due_diligence": (manifest.get("due_diligence") or {}).get("sellers", 0),
        "warnings": len(manifest.get("warnings") or []),
    }


def group_outcome(outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What a group's run filed: ``finalize``'s outcome of each operator (by id, in order) added up,
    its filings named by operator and authority (``de_gmbh DE``), and each operator's own under
    ``operators``. Counts only."""
    first = next(iter(outcomes.values()))
    records: dict[str, int] = {}
    for o in outcomes.values():
        for kind, n in (o.get("records") or {}).items():
            records[kind] = records.get(kind, 0) + int(n)

    def total(key: str) -> int:
        return sum(int(o.get(key) or 0) for o in outcomes.values())

    return {
        "reporting_year": first["reporting_year"],
        "environment": first.get("environment"),
        "as_of": first.get("as_of"),
        "preview": bool(first.get("preview")),
        "files": total("files"),
        "sellers": total("sellers"),
        "manifest": first.get("manifest"),
        "authorities": [f"{op} {a}" for op, o in outcomes.items() for a in o.get("authorities") or []],
        "records": records,
        "sellers_read": total("sellers_read"),
        "reportable": total("reportable"),
        "quarantined": total("quarantined"),
        "due_diligence": total("due_diligence"),
        "warnings": total("warnings"),
        "operators": {
            op: {k: o.get(k) for k in ("files", "sellers", "authorities", "manifest")} for op, o in outcomes.items()
        },
    }


# --- effective settings -------------------------------------------------------------------------


def effective_settings(run_dir: str | Path) -> dict[str, Any]:
    """The settings a run actually uses (Params over configuration over defaults), as logged: no
    personal data and no password (a URL with a password is never stored in the settings)."""
    from reporting import pipeline

    s = pipeline.recorded_settings(run_dir)
    rep = s["config"]["reporting"]
    return {
        "reporting_year": s["year"],
        "as_of": s["as_of"],
        "environment": rep["environment"],
        "mode": s["mode"],
        "sellers": s["sellers"],
        "authorities": s["authorities"] or "every authority with something due",
        "routing": rep["routing"],
        "timezone": rep["timezone"],
        "reporting_currency": rep["reporting_currency"],
        "operator_files_in": s["config"]["operator"].get("nexus_country")
        or s["config"]["operator"]["address"]["country"],
        **({"operators": s.get("operator_ids")} if s.get("operator_ids") else {}),
        "run_id": s["run_id"],
        "timestamp_utc": s["timestamp"],
        "config": s["config_path"],
        "out_dir": s["out_dir"],
        "source": _source_shown(s),
        "ledger": s["ledger_url"]
        or s.get("ledger_shown")
        or "from DAC7_LEDGER_URL or its Airflow Connection (not shown: it holds a password)",
    }


def _source_shown(settings: Mapping[str, Any]) -> str:
    """The source as the settings record it: the URL, where Apache Spark reads the tables, or
    where the URL comes from when it holds a password (never written down)."""
    spark = settings["config"].get("source", {}).get("spark")
    if spark:
        if spark.get("tables"):
            return f"Apache Spark: Parquet tables in {spark['tables']}"
        return f"Apache Spark: the database {spark['database']}"
    return settings["source_url"] or "from DAC7_SOURCE_URL or its Airflow Connection (not shown: it holds a password)"


def log_effective_settings(run_dir: str | Path, params: Mapping[str, Any]) -> None:
    given = {k: v for k, v in params.items() if v not in (None, [], "auto")}
    log.info("Params given: %s", json.dumps(given, sort_keys=True, default=str) if given else "none")
    log.info("effective settings: %s", json.dumps(effective_settings(run_dir), sort_keys=True, default=str))
