"""The quarterly watch: its quarter comes from the run, it reads only the payments made by the
quarter's end, renders no XML and files nothing, its watch list names the sellers near or over the
de minimis limits (as the filing state's law reads them) with due diligence open, and, through
``dag.test()``, a demo marketplace is watched as of the end of the third quarter."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")

STAGES = ["prepare", "extract", "aggregate", "apply_rules", "report", "watch_list"]


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags["dac7_quarterly"]


def test_tasks_are_the_stages_in_order(dag: Any) -> None:
    assert [t.task_id for t in dag.topological_sort()] == STAGES
    for before, after in pairwise(STAGES):
        assert before in dag.get_task(after).upstream_task_ids
    for stage in STAGES[1:]:
        assert "prepare" in dag.get_task(stage).upstream_task_ids, stage


def test_schedule_is_after_each_quarter(dag: Any) -> None:
    from airflow.sdk import CronTriggerTimetable

    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert dag.timetable.expression == "0 6 1 1,4,7,10 *"
    assert str(dag.timetable.timezone) == "UTC"
    assert dag.catchup is False and dag.max_active_runs == 1


def test_database_steps_retry(dag: Any) -> None:
    for stage in STAGES:
        assert dag.get_task(stage).retries == (2 if stage == "extract" else 0), stage


def test_params_are_a_labelled_form(dag: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    assert set(dag.params.keys()) == {"reporting_year", "quarter"}
    for name in dag.params:
        assert dag.params.get_param(name).schema.get("title") and dag.params.get_param(name).description
    assert dag.params.get_param("quarter").schema["enum"] == [None, 1, 2, 3, 4]
    with pytest.raises(ParamValidationError):
        dag.params.get_param("quarter").resolve(5)


@pytest.mark.parametrize(
    ("logical_date", "expected"),
    [
        (datetime(2026, 4, 1, 6, tzinfo=UTC), (2026, 1, date(2026, 3, 31))),
        (datetime(2026, 7, 1, 6, tzinfo=UTC), (2026, 2, date(2026, 6, 30))),
        (datetime(2026, 10, 1, 6, tzinfo=UTC), (2026, 3, date(2026, 9, 30))),
        # the January run previews the whole of the year that ended
        (datetime(2026, 1, 1, 6, tzinfo=UTC), (2025, 4, date(2025, 12, 31))),
    ],
)
def test_the_quarter_is_the_one_that_ended_before_the_run(logical_date: datetime, expected: tuple) -> None:
    from dac7_support.quarterly import quarter_period

    assert quarter_period(logical_date, None, {}) == expected


def test_a_manual_run_previews_the_last_quarter_that_ended_or_the_params() -> None:
    from dac7_support.quarterly import quarter_period

    run_after = datetime(2026, 5, 15, 9, tzinfo=UTC)
    assert quarter_period(None, run_after, {}) == (2026, 1, date(2026, 3, 31))
    assert quarter_period(None, run_after, {"reporting_year": 2025, "quarter": 2}) == (2025, 2, date(2025, 6, 30))
    with pytest.raises(ValueError, match="set both the reporting_year and the quarter"):
        quarter_period(None, run_after, {"reporting_year": 2025, "quarter": None})


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def decision(
    seller: str, sales: int, eur: str, decision: str = "excluded:de_minimis", reading: str = "EU"
) -> dict[str, str]:
    return {
        "seller_id": seller,
        "decision": decision,
        "goods_activities": str(sales),
        "goods_eur": eur,
        "reading": reading,
    }


def test_watch_list_is_near_or_over_the_limits_with_due_diligence_open(tmp_path: Path) -> None:
    from dac7_support.watch import watch_rows

    decisions = write_csv(
        tmp_path / "decisions.csv",
        [
            decision("S01", 30, "100.00", "reported"),  # the 30th sale crosses
            decision("S02", 2, "2000.01", "reported"),  # more than EUR 2,000 crosses
            decision("S03", 29, "2000.00"),  # at both limits, still excluded: near
            decision("S04", 24, "10.00"),  # 80% of 30 sales: near
            decision("S05", 1, "1600.00"),  # 80% of EUR 2,000: near
            decision("S06", 23, "1599.99"),  # below 80% of both: not watched
            decision("S07", 40, "5000.00", "reported"),  # over, but due diligence has nothing open
            decision("S08", 0, "", "reported"),  # no sales of goods (services, rentals)
        ],
    )
    diligence = write_csv(
        tmp_path / "due_diligence.csv",
        [
            {"seller_id": s, "kind": k}
            for s, k in [
                ("S01", "TIN unknown"),
                ("S01", "IBAN malformed"),
                ("S02", "threshold crossed without complete data"),
                ("S03", "quarantined"),
                ("S04", "data check warning"),
                ("S05", "TIN malformed"),
                ("S06", "TIN unknown"),
                ("S08", "TIN unknown"),
            ]
        ],
    )
    rows = watch_rows(decisions, diligence)
    assert [(r["seller_id"], r["threshold"]) for r in rows] == [
        ("S01", "crossed"),
        ("S02", "crossed"),
        ("S03", "within 20%"),
        ("S04", "within 20%"),
        ("S05", "within 20%"),
    ]
    assert rows[0]["due_diligence"] == "TIN unknown; IBAN malformed"
    assert rows[1] == {
        "seller_id": "S02",
        "threshold": "crossed",
        "goods_sales": "2",
        "goods_eur": "2000.01",
        "decision": "reported",
        "due_diligence": "threshold crossed without complete data",
    }


def test_watch_list_reads_the_limits_as_the_filing_state_does(tmp_path: Path) -> None:
    """Exactly EUR 2,000.00 did not exceed the limit under the EU wording (a filing in LT), but is
    no longer "weniger als 2 000 Euro" under the German reading (a filing in DE): crossed."""
    from dac7_support.watch import watch_rows

    diligence = write_csv(
        tmp_path / "due_diligence.csv", [{"seller_id": s, "kind": "TIN unknown"} for s in ("S01", "S02", "S03")]
    )
    decisions = write_csv(
        tmp_path / "decisions.csv",
        [
            decision("S01", 5, "2000.00", reading="EU"),
            decision("S02", 5, "2000.00", "reported", reading="DE"),
            decision("S03", 5, "1999.99", reading="DE"),
        ],
    )
    assert [(r["seller_id"], r["threshold"]) for r in watch_rows(decisions, diligence)] == [
        ("S01", "within 20%"),
        ("S02", "crossed"),
        ("S03", "within 20%"),
    ]


def test_a_uk_filings_watch_reads_the_limits_as_hmrc_does(tmp_path: Path) -> None:
    """A filing with HMRC (the ``GB`` reading): fewer than 30 sales and not more than EUR 2,000
    (HMRC IEIM901630: "did not exceed 2000 euros", both tests), beside a DAC7 seller (the EU
    wording, a filing in LT) and a German-read one in the same situation. By hand: at exactly EUR
    2,000.00 the GB and EU sellers have not crossed (not exceeded), the German one has ("weniger
    als 2 000 Euro"); EUR 2,000.01 crosses under every reading; 30 sales cross, 29 do not; 24 sales
    (80% of 30) and EUR 1,600.00 (80% of EUR 2,000) are near; 23 sales and EUR 1,599.99 are not."""
    from dac7_support.watch import watch_rows

    from reporting.variants import reading_for

    assert reading_for("GB").code == "GB" and not reading_for("GB").de_minimis_strict
    sellers = [f"{r}{n}" for r in ("GB", "EU", "DE") for n in range(1, 7)]
    diligence = write_csv(tmp_path / "due_diligence.csv", [{"seller_id": s, "kind": "TIN unknown"} for s in sellers])
    situations = [(29, "2000.00"), (2, "2000.01"), (30, "10.00"), (24, "10.00"), (1, "1600.00"), (23, "1599.99")]
    decisions = write_csv(
        tmp_path / "decisions.csv",
        [
            decision(f"{reading}{n}", sales, eur, reading=reading)
            for reading in ("GB", "EU", "DE")
            for n, (sales, eur) in enumerate(situations, start=1)
        ],
    )
    got = {r["seller_id"]: r["threshold"] for r in watch_rows(decisions, diligence)}
    for reading in ("GB", "EU"):
        assert {k[2:]: v for k, v in got.items() if k.startswith(reading)} == {
            "1": "within 20%",  # EUR 2,000.00 did not exceed the limit
            "2": "crossed",
            "3": "crossed",
            "4": "within 20%",
            "5": "within 20%",
        }, reading
    assert got["DE1"] == "crossed" and "DE6" not in got


# --- a real run through dag.test() ----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from dac7_demo import generate_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('source') / 'marketplace.db'}"
    generate_demo(url, sellers=200, seed=7, year=2025, replace=True)
    return url


def watch_after_q3(monkeypatch: pytest.MonkeyPatch, config: Path, source: str, out: Path, ledger: Path) -> Any:
    """The quarterly DAG's run of 1 October 2025 (the watch of Q3) over ``source`` with ``config``,
    publishing under ``out`` (staging beside it; ``ledger``: the ledger URL's file, never opened)."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("DAC7_CONFIG", str(config))
    monkeypatch.setenv("DAC7_SOURCE_URL", source)
    monkeypatch.setenv("DAC7_OUT_DIR", str(out))
    monkeypatch.setenv("DAC7_STAGING_DIR", str(out.parent / "staging"))
    monkeypatch.setenv("DAC7_LEDGER_URL", f"sqlite:///{ledger}")
    dag = DagBag(dag_folder=str(DAGS)).dags["dac7_quarterly"]
    return dag.test(logical_date=datetime(2025, 10, 1, 6, tzinfo=UTC))


@pytest.mark.slow
@pytest.mark.usefixtures("airflow_db")
def test_quarterly_run_watches_the_year_so_far_as_of_the_quarters_end(
    demo_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from dac7_support.watch import COLUMNS

    out, production = tmp_path / "out", tmp_path / "production-ledger.sqlite3"
    dr = watch_after_q3(monkeypatch, REPO / "dac7.toml", demo_db, out, production)

    assert str(dr.state) == "success"
    assert {ti.task_id: str(ti.state) for ti in dr.get_task_instances()} == dict.fromkeys(STAGES, "success")
    watch = out / "2025" / "watch" / "Q3"
    manifest = json.loads((watch / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["environment"] == "test" and manifest["watch"] is True
    assert manifest["as_of"] == "2025-09-30"
    assert manifest["files"] == [] and not list(watch.glob("*/*.xml"))  # no XML rendered
    # only the payments made by the end of 30 September (Europe/Vilnius: 21:00 UTC) were read
    with sqlite3.connect(demo_db.removeprefix("sqlite:///")) as con:
        count = "select count(*) from transactions where paid_at >= '2024-12-31 22:00:00' and paid_at < ?"
        (by_quarter_end,) = con.execute(count, ["2025-09-30 21:00:00"]).fetchone()
        (in_year,) = con.execute(count, ["2025-12-31 22:00:00"]).fetchone()
    assert manifest["summary"]["transactions_read"] == by_quarter_end < in_year
    assert manifest["summary"]["reportable"] > 0
    assert (
        json.loads((watch / "run_settings.json").read_text(encoding="utf-8"))["config"]["reporting"]["environment"]
        == "test"
    )
    # nothing filed anywhere, and nothing next to the annual filing of the year
    assert not production.exists() and not (watch / "dac7-ledger.sqlite3").exists()
    assert sorted(p.name for p in (out / "2025").iterdir()) == ["watch"]

    with (watch / "watch_list.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == COLUMNS
    assert rows, "the demo has reportable goods sellers with open due diligence"
    with (watch / "reports" / "decisions.csv").open(encoding="utf-8", newline="") as fh:
        decisions = {r["seller_id"]: r for r in csv.DictReader(fh)}
    for r in rows:
        assert r["seller_id"] in decisions
        assert r["threshold"] in {"crossed", "within 20%"} and r["due_diligence"]


@pytest.mark.slow
@pytest.mark.usefixtures("airflow_db")
def test_a_groups_watch_reads_the_uk_filing_under_the_uk_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The group of an EU operator (LT) and a UK operator (``[operators.uk_ltd]``, filing with
    HMRC) watched after Q3: each operator's watch list in its own folder, each seller read by its
    own filing's law (the ``reading`` of its decision). No seller has a TIN: a reported one is
    reported with TIN unknown, due diligence open (the report lists reported sellers only). By
    hand, as of 30 September 2025, through the UK operator:

    - UK_AT, resident in the UK, 20 sales of goods of EUR 100.00: EUR 2,000.00 did not exceed
      HMRC's limit and fewer than 30 sales (IEIM901630, both tests): excluded, nothing open, in no
      list;
    - UK_OVER, the same and one more sale of EUR 0.01: EUR 2,000.01 crosses, reported: crossed;
    - UK_NEAR, 25 sales of goods of EUR 10.00 and one personal service: reported (it did not
      *solely* sell goods); 25 sales are at least 80% of 30: near (no goods amount is computed for
      a seller outside the de minimis test);

    and through the EU operator, DAC7 sellers resident in Lithuania in the same situations:
    LT_AT excluded (the EU wording: "did not exceed"), LT_OVER crossed; LT_LATE, 30 sales paid in
    October, after the quarter: not read, in no list.
    """
    from builders import TWO_FILINGS_TOML, Marketplace

    m = Marketplace()
    for who, country, operator in (("UK", "GB", "uk_ltd"), ("LT", "LT", None)):
        m.seller(f"{who}_AT", country=country, tin=None)
        m.sales(f"{who}_AT", 20, 100_00, operator_id=operator)
        m.seller(f"{who}_OVER", country=country, tin=None)
        m.sales(f"{who}_OVER", 20, 100_00, operator_id=operator)
        m.tx(f"{who}_OVER", "2025-06-01 10:00:00", 1, operator_id=operator)
    m.seller("UK_NEAR", country="GB", tin=None)
    m.sales("UK_NEAR", 25, 10_00, operator_id="uk_ltd")
    m.tx("UK_NEAR", "2025-06-01 10:00:00", 50_00, activity="personal_services", operator_id="uk_ltd")
    m.seller("LT_LATE", country="LT", tin=None)
    m.sales("LT_LATE", 30, 100_00, start="2025-10-02 10:00:00")
    source = m.write(f"sqlite:///{tmp_path / 'source.db'}")
    config = tmp_path / "dac7.toml"
    config.write_text((REPO / "dac7.toml").read_text(encoding="utf-8") + TWO_FILINGS_TOML, encoding="utf-8")
    out = tmp_path / "out"
    dr = watch_after_q3(monkeypatch, config, source, out, tmp_path / "ledger.sqlite3")
    assert str(dr.state) == "success", {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}

    watch = out / "2025" / "watch" / "Q3"

    def listed(folder: Path) -> dict[str, tuple[str, str, str]]:
        with (folder / "watch_list.csv").open(encoding="utf-8", newline="") as fh:
            return {r["seller_id"]: (r["threshold"], r["goods_sales"], r["goods_eur"]) for r in csv.DictReader(fh)}

    def readings(folder: Path) -> dict[str, str]:
        with (folder / "reports" / "decisions.csv").open(encoding="utf-8", newline="") as fh:
            return {r["seller_id"]: r["reading"] for r in csv.DictReader(fh)}

    uk = watch / "operators" / "uk_ltd"
    assert listed(uk) == {
        "UK_NEAR": ("within 20%", "25", ""),
        "UK_OVER": ("crossed", "21", "2000.0100"),
    }
    assert readings(uk) == {"UK_AT": "GB", "UK_NEAR": "GB", "UK_OVER": "GB"}
    assert listed(watch) == {"LT_OVER": ("crossed", "21", "2000.0100")}
    assert readings(watch) == {"LT_AT": "EU", "LT_OVER": "EU"}
    with (uk / "reports" / "decisions.csv").open(encoding="utf-8", newline="") as fh:
        assert {r["seller_id"]: r["decision"] for r in csv.DictReader(fh)}["UK_AT"] == "excluded:de_minimis"
    manifest = json.loads((uk / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["watch"] is True and manifest["files"] == [] and manifest["as_of"] == "2025-09-30"
    assert not (tmp_path / "ledger.sqlite3").exists()  # the watch files nothing: no ledger opened
