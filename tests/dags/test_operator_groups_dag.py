"""A group of operators in the annual DAG: one run files for every operator, its mapped tasks
labelled with the operator and the authority; the Param ``operator`` reruns one operator alone
and touches nothing of the others (their files, ledger rows and statements)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from builders import TWO_FILINGS_TOML, two_filings_market
from test_dac7_annual import REPO, STAGES, dac7_environment, fresh_dag, task_states, xcoms

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")

LT2 = """
[operators.lt2]
name = "Second Market UAB"
tin = "305555555"
tin_issued_by = "LT"
nexus = "RPONEX1"

[operators.lt2.address]
city = "Kaunas"
country = "LT"
"""


def test_the_operator_param_names_one_operator_of_the_group(dag: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    param = dag.params.get_param("operator")
    assert param.schema["type"] == ["null", "string"] and param.value is None  # empty: every operator
    assert "touches nothing of the other operators" in param.description
    assert param.resolve("lt2") == "lt2" and param.resolve("de_gmbh") == "de_gmbh"
    for bad in ("LT2", "lt2,default", "lt 2"):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)


def test_a_filing_task_names_its_filing_before_anything_can_fail(dag: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The label comes from ``plan``'s output, set first: a mapped task that fails at once (its
    staging out of reach, the ledger's URL unresolved) still reads ``lt2 LT`` in the grid."""
    from dac7_support import tasks

    labels: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "_label", lambda **kw: labels.append(kw))

    def unreachable(run_dir: str) -> Any:
        raise OSError("the staging directory is out of reach")

    monkeypatch.setattr(tasks, "in_run", unreachable)
    # publish reads the approval before it reaches the staging
    monkeypatch.setattr(tasks, "get_current_context", lambda: {"ti": SimpleNamespace(xcom_pull=lambda **kw: None)})
    for stage, args in (
        ("render", {}),
        ("publish", {}),
        ("validate", {"part": 0}),
    ):
        labels.clear()
        with pytest.raises(OSError, match="out of reach"):
            dag.get_task(stage).python_callable(
                run_dir="/nowhere", operator="lt2", authority="LT", label="lt2 LT", **args
            )
        assert labels[0] == {"filing": "lt2 LT", "authority": "LT", "operator": "lt2"}, stage


def test_files_carry_the_filings_label_to_validate(dag: Any) -> None:
    files = dag.get_task("files").python_callable
    rendered = [{"operator": "lt2", "authority": "LT", "label": "lt2 LT", "messages": 2, "discarded": 0}]
    assert files(rendered) == [
        {"operator": "lt2", "authority": "LT", "label": "lt2 LT", "part": 0},
        {"operator": "lt2", "authority": "LT", "label": "lt2 LT", "part": 1},
    ]


@pytest.fixture(scope="module")
def dag(dagbag: Any) -> Any:
    return dagbag.dags["dac7_annual"]


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


@pytest.fixture(scope="module")
def group_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo marketplace of a group: the transactions of every third seller are lt2's."""
    from dac7_demo import generate_demo

    path = tmp_path_factory.mktemp("group-source") / "marketplace.db"
    generate_demo(f"sqlite:///{path}", sellers=60, seed=7, year=2025, replace=True)
    with sqlite3.connect(path) as con:
        sellers = [r[0] for r in con.execute("select seller_id from sellers order by seller_id")]
        con.executemany("update transactions set operator_id = 'lt2' where seller_id = ?", [(s,) for s in sellers[::3]])
    return f"sqlite:///{path}"


def hashes(root: Path, *, skip: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_relative_to(skip)
    }


def rows_of(ledger: Path, operator_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as con:
        return [
            *con.execute("select * from ledger_messages where operator_id = ? order by id", (operator_id,)),
            *con.execute(
                "select r.* from ledger_records r join ledger_messages m on m.id = r.message_id "
                "where m.operator_id = ? order by r.id",
                (operator_id,),
            ),
            *con.execute(
                "select s.* from ledger_statements s join ledger_messages m on m.message_ref_id = s.message_ref_id "
                "where m.operator_id = ? order by s.id",
                (operator_id,),
            ),
        ]


@pytest.mark.slow
def test_one_run_files_for_every_operator_and_a_rerun_for_one_touches_no_other(
    airflow_db: None, group_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "dac7.toml"
    config.write_text((REPO / "dac7.toml").read_text(encoding="utf-8") + LT2, encoding="utf-8")
    paths = dac7_environment(monkeypatch, tmp_path, group_db, config)
    dr = fresh_dag().test(logical_date=datetime(2026, 1, 15, 6, tzinfo=UTC))
    assert str(dr.state) == "success"
    # a test run (no approval) to LT, a portal upload: no protocol to wait for
    assert task_states(dr) == {s: {"skipped"} if s in ("approve", "protocol") else {"success"} for s in STAGES}
    # the mapped tasks are named by operator and authority: which entity's filing is read off the grid
    labels = {
        stage: sorted(ti.rendered_map_index for ti in dr.get_task_instances() if ti.task_id == stage)
        for stage in ("render", "validate", "publish", "transmit", "protocol")
    }
    assert labels == {
        "render": ["default LT", "lt2 LT"],
        "validate": ["default LT #1", "lt2 LT #1"],
        "publish": ["default LT", "lt2 LT"],
        "transmit": ["default LT", "lt2 LT"],
        "protocol": ["default LT", "lt2 LT"],
    }
    values = xcoms(dr)
    assert json.loads(values[("plan", -1)]) == [
        {"operator": "default", "authority": "LT", "label": "default LT"},
        {"operator": "lt2", "authority": "LT", "label": "lt2 LT"},
    ]
    outcome = json.loads(values[("finalize", -1)])
    assert outcome["authorities"] == ["default LT", "lt2 LT"] and set(outcome["operators"]) == {"default", "lt2"}
    out = paths["out"] / "2025"
    default = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    lt2 = json.loads((out / "operators" / "lt2" / "manifest.json").read_text(encoding="utf-8"))
    assert (default["operator_id"], lt2["operator_id"]) == ("default", "lt2")
    assert default["files"] and lt2["files"]
    assert not {f["message_ref_id"] for f in default["files"]} & {f["message_ref_id"] for f in lt2["files"]}
    assert (out / "statements" / "statements.jsonl").is_file()
    assert (out / "operators" / "lt2" / "statements" / "statements.jsonl").is_file()

    # a rerun for lt2 alone, after the source changed for both operators: a seller the default
    # operator reported now sells through lt2 (new data for lt2; for the default operator, a seller
    # whose record would be deleted, if it were rerun: it is not)
    with sqlite3.connect(paths["ledger"]) as con:
        moved = con.execute(
            "select min(r.seller_key) from ledger_records r join ledger_messages m on m.id = r.message_id "
            "where m.operator_id = 'default' and r.kind = 'seller'"
        ).fetchone()[0]
    with sqlite3.connect(group_db.removeprefix("sqlite:///")) as con:
        con.execute("update transactions set operator_id = 'lt2' where seller_id = ?", (moved,))
    before = hashes(out, skip=out / "operators" / "lt2")
    kept = rows_of(paths["ledger"], "default")
    again = fresh_dag().test(
        logical_date=datetime(2026, 1, 16, 6, tzinfo=UTC),
        run_conf={"reporting_year": 2025, "as_of": "2026-01-14", "environment": "test", "operator": "lt2"},
    )
    assert str(again.state) == "success", task_states(again)
    assert task_states(again)["approve"] == {"skipped"}  # new data in the test space: nothing to confirm
    assert sorted(ti.rendered_map_index for ti in again.get_task_instances() if ti.task_id == "publish") == ["lt2 LT"]
    assert hashes(out, skip=out / "operators" / "lt2") == before  # nothing of the default operator's
    assert rows_of(paths["ledger"], "default") == kept
    with sqlite3.connect(paths["ledger"]) as con:
        kinds = [r[0] for r in con.execute("select message_type_indic from ledger_messages where operator_id = 'lt2'")]
        new = {
            r[0]
            for r in con.execute(
                "select r.seller_key from ledger_records r join ledger_messages m on m.id = r.message_id "
                "where m.operator_id = 'lt2' and r.kind = 'seller' and m.id = (select max(id) from ledger_messages)"
            )
        }
    assert kinds == ["DPI401", "DPI401"] and new == {moved}  # lt2 filed the seller it gained, as new data
    lt2 = json.loads((out / "operators" / "lt2" / "manifest.json").read_text(encoding="utf-8"))
    assert lt2["operator_id"] == "lt2" and [f["sellers"] for f in lt2["files"]] == [1]


# --- the DAC7 view: the year's filings grouped by operator ---------------------------------------


def test_the_view_groups_the_years_filings_by_operator_and_serves_each_operators_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The year's page shows each operator's filings under its own heading (its id and name, the
    default operator first), each authority's table apart; a further operator's file links below
    ``operators/<ID>/`` and is served from there, and the view serves nothing else there."""
    from builders import write_config
    from integration.test_operator_groups import GROUP, _run, market
    from lxml import html

    monkeypatch.syspath_prepend(str(REPO / "plugins"))
    import dac7_view

    source = market().write(f"sqlite:///{tmp_path}/source.db")
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    config = write_config(tmp_path / "dac7.toml", extra=GROUP)
    result = _run(tmp_path, config, source, ledger, out_dir=tmp_path / "out" / "2025")  # <out>/<year>, as the DAG
    files = {r.operator_id: r.manifest["files"] for r in result.operators}
    src = dac7_view.Sources(ledger, tmp_path / "out")
    view = dac7_view.year_view(src, 2025)
    assert view.operator_names == {
        "default": "Demo Marketplace UAB",
        "lt2": "Second Market UAB",
        "de_gmbh": "Demo Marktplatz GmbH",
    }
    page = html.fromstring(dac7_view.year_page(view, None))
    headings = [h.text_content() for h in page.xpath("//h3[@class='operator']")]
    assert headings == [
        "Operator default: Demo Marketplace UAB",
        "Operator de_gmbh: Demo Marktplatz GmbH",
        "Operator lt2: Second Market UAB",
    ]
    # each operator's messages in its own table: LT twice (two entities), DE once
    tables = {t.get("id"): t for t in page.xpath("//table[starts-with(@id, 'ledger-')]")}
    assert set(tables) == {"ledger-default-LT", "ledger-lt2-LT", "ledger-de_gmbh-DE"}
    for operator_id, table_id in (("default", "ledger-default-LT"), ("lt2", "ledger-lt2-LT")):
        text = tables[table_id].text_content()
        assert files[operator_id][0]["message_ref_id"] in text
        other = "lt2" if operator_id == "default" else "default"
        assert files[other][0]["message_ref_id"] not in text
    # the links: the default operator's file as a single operator's, the others' in their folder
    hrefs = {a.get("href") for a in page.xpath("//a[@class='download']")}
    lt2_file = f"operators/lt2/{files['lt2'][0]['file']}"
    assert f"files/{files['default'][0]['file']}" in hrefs and f"files/{lt2_file}" in hrefs
    served = dac7_view.reachable_file(src, 2025, lt2_file)
    assert served == (tmp_path / "out" / "2025" / lt2_file).resolve()
    assert dac7_view.reachable_file(src, 2025, "operators/lt2/manifest.json") is None
    assert dac7_view.reachable_file(src, 2025, "operators/lt2/../manifest.json") is None
    assert dac7_view.reachable_file(src, 2025, "operators/Nobody/LT/x.xml") is None


# --- the deadline check and the metrics: each operator's filing apart ---------------------------


def test_the_deadline_expects_every_operators_filing_and_names_the_one_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A production filing of the default operator and lt2, and none of de_gmbh: the deadline
    check names de_gmbh's filing (``de_gmbh DE``), not the others; each finalized run's gauges
    are its operator's (a further operator's under ``dac7.operator.<ID>.``)."""
    from builders import write_config
    from dac7_support.deadline import check_deadline, configured_filings
    from dac7_support.metrics import emit_run_metrics, operator_metric
    from integration.test_operator_groups import GROUP, _run, market

    from reporting.config import load_config

    monkeypatch.delenv("DAC7_DEADLINE_WARN", raising=False)
    config = write_config(tmp_path / "dac7.toml", environment="prod", extra=GROUP)
    assert configured_filings(load_config(config)) == [("default", "LT"), ("lt2", "LT"), ("de_gmbh", "DE")]
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    result = _run(
        tmp_path, config, market().write(f"sqlite:///{tmp_path}/source.db"), ledger, operators=["default", "lt2"]
    )
    assert [r.operator_id for r in result.operators] == ["default", "lt2"]
    sent: list[tuple[str, float, dict[str, str]]] = []

    class Stats:
        def gauge(self, name: str, value: float, tags: dict[str, str]) -> None:
            sent.append((name, value, dict(tags)))

        def incr(self, name: str, tags: dict[str, str]) -> None:
            pass

    monkeypatch.setattr("dac7_support.metrics.airflow_stats", lambda: Stats())
    sellers = {}
    for one in result.operators:
        sellers[one.operator_id] = emit_run_metrics(one.manifest)
    assert "dac7.sellers.read" in sellers["default"]
    assert operator_metric("dac7.sellers.read", "lt2") == "dac7.operator.lt2.sellers.read"
    assert sellers["lt2"]["dac7.operator.lt2.sellers.read"] == 2  # BOTH and ONLY_LT2
    assert sellers["default"]["dac7.sellers.read"] == 3  # BOTH, EDGE and ONLY_DEF
    assert {t["operator"] for _, _, t in sent} == {"default", "lt2"}

    received: list[tuple[str, str]] = []
    monkeypatch.setattr("dac7_support.deadline.notify", lambda subject, text, level: received.append((subject, text)))
    # published, not sent yet: no operator's filing counts as filed (filed means transmitted or uploaded)
    assert check_deadline(2025, date(2026, 1, 26), config, ledger_url=ledger)["missing"] == [
        "de_gmbh DE",
        "default LT",
        "lt2 LT",
    ]
    received.clear()
    from reporting.ledger import open_ledger

    with open_ledger(ledger, create=False) as led:  # the two LT filings uploaded in the portal
        refs = [m.message_ref_id for m in led.messages(year=2025) if m.status == "published"]
        assert len(refs) == 2
        for ref in refs:
            led.record_transmission(ref, event="uploaded", channel="outbox", actor="ana", at=datetime(2026, 1, 20, 9))
    assert check_deadline(2025, date(2026, 1, 26), config, ledger_url=ledger) == {
        "year": 2025,
        "due": True,
        "missing": ["de_gmbh DE"],
    }
    ((subject, _),) = received
    assert "de_gmbh DE" in subject and "lt2" not in subject


@pytest.mark.slow
def test_a_group_files_under_dac7_and_under_the_uk_rules_from_one_source(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two-filing group of tests/integration/test_group_two_filings.py through the annual
    DAG: one run, the EU operator's filing to LT and the UK operator's to HMRC, each with the
    sellers its own law reports (the reasons are computed there)."""
    source = two_filings_market().write(f"sqlite:///{tmp_path}/source.db")
    config = tmp_path / "dac7.toml"
    config.write_text((REPO / "dac7.toml").read_text(encoding="utf-8") + TWO_FILINGS_TOML, encoding="utf-8")
    paths = dac7_environment(monkeypatch, tmp_path, source, config)
    dr = fresh_dag().test(logical_date=datetime(2026, 1, 15, 6, tzinfo=UTC))
    assert str(dr.state) == "success", task_states(dr)
    assert json.loads(xcoms(dr)[("plan", -1)]) == [
        {"operator": "default", "authority": "LT", "label": "default LT"},
        {"operator": "uk_ltd", "authority": "GB", "label": "uk_ltd GB"},
    ]
    assert sorted(ti.rendered_map_index for ti in dr.get_task_instances() if ti.task_id == "publish") == [
        "default LT",
        "uk_ltd GB",
    ]
    out = paths["out"] / "2025"
    for folder, authority, sellers in (
        (out, "LT", {"UK_FLAT", "DE_SVC", "US_LT_TIN"}),
        (out / "operators" / "uk_ltd", "GB", {"UK_SVC", "IE_SVC"}),
    ):
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert [f["authority"] for f in manifest["files"]] == [authority]
        feed = (folder / "statements" / "statements.jsonl").read_text(encoding="utf-8").splitlines()
        assert {json.loads(line)["seller_id"] for line in feed} == sellers, authority
    with sqlite3.connect(paths["ledger"]) as con:
        filed = set(con.execute("select operator_id, authority from ledger_messages"))
    assert filed == {("default", "LT"), ("uk_ltd", "GB")}
