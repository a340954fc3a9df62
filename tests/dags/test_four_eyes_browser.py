"""Four eyes as people use it: ``make airflow``'s own Airflow, two logins, a real headless Chromium.

``scripts/airflow_local.sh`` (what ``make airflow`` runs: ``airflow standalone`` with the users
``compliance``, ``approver``, ``auditor`` and ``admin``, and ``DAC7_APPROVERS=approver,compliance``)
starts with a throwaway home (``DAC7_AIRFLOW_HOME``), a free port, a demo marketplace as the
source and an output, staging and ledger of this test. The demo configuration ``dac7.toml``
files in LT.

1. ``admin`` triggers a production filing (the REST API, as the UI's Trigger button does). The run
   stops at ``approve``, waiting for a person; the request is assigned to ``approver`` and
   ``compliance`` only.
2. ``admin`` logs in through Airflow's login page, opens the run's *Required actions*, sees the
   request naming them as the person who triggered, clicks **Approve** and gets Airflow's
   "Access Denied": the task still waits, the request has no answer, nothing is published.
3. ``approver`` logs in, sees the request with the MessageRefId and the sha256 of each pending
   file, opens the pending file through the request's link (its bytes have that sha256; the
   api-server logs the download with the user and the sha256), sees the run's pending page, and
   clicks **Approve**. The run publishes: the file in the output is the one approved, and the
   ledger records it as triggered by ``admin`` and approved by ``approver``.

The ``auditor`` (no download permission) is refused the pending file, and nobody without a login
gets it. Screenshots of each page are written to ``DAC7_SCREENSHOTS_DIR`` when it is set (the
documentation's images: ``DAC7_SCREENSHOTS_DIR=docs/img``).

Fast tests below: which paths ``dac7_pending`` serves, and the approvers' parsing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow_stack import Api, base_env, free_port, request, spawn, stop, tail, wait_until_healthy
from browser import Chromium
from test_ui_view import FETCH, log_in, wait_for

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
DAG_ID = "dac7_annual"
YEAR = 2025
FILING_STATE = "LT"
TRIGGERED_BY = "admin"
APPROVER = "approver"
RUN_URL = "/dags/{dag_id}/dagRuns/{run_id}"
#: seconds for the run to reach the approval, and to publish after it, on a busy 2-core machine
RUN_TIMEOUT = 420.0
BUTTONS = "[...document.querySelectorAll('button')]"


@dataclass(frozen=True)
class Local:
    base: str
    passwords: dict[str, str]
    log: Path  # airflow standalone's log: every component's output
    out: Path
    staging: Path
    ledger_url: str


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    """scripts/airflow_local.sh, as ``make airflow`` starts it, with the demo source."""
    from dac7_demo import generate_demo

    tmp = tmp_path_factory.mktemp("four-eyes-browser")
    source = f"sqlite:///{tmp / 'marketplace.db'}"
    generate_demo(source, sellers=200, seed=7, year=YEAR, replace=True)
    port = free_port()
    home = tmp / "airflow-home"
    ledger_url = f"sqlite:///{tmp / 'ledger.sqlite3'}"
    env = base_env() | {
        "DAC7_AIRFLOW_HOME": str(home),
        "AIRFLOW_PORT": str(port),
        "DAC7_CONFIG": str(REPO / "dac7.toml"),
        "DAC7_SOURCE_URL": source,
        "DAC7_OUT_DIR": str(tmp / "out"),
        "DAC7_STAGING_DIR": str(tmp / "staging"),
        "DAC7_LEDGER_URL": ledger_url,
    }
    script_log = tmp / "airflow_local.log"
    script = spawn(["sh", str(REPO / "scripts" / "airflow_local.sh")], env, script_log, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(script, base, script_log, timeout=240)
        deadline = time.monotonic() + 60
        while "Airflow is ready" not in script_log.read_text(encoding="utf-8", errors="replace"):
            assert time.monotonic() < deadline, tail(script_log)
            time.sleep(0.5)
        passwords = json.loads((home / "passwords.json").read_text(encoding="utf-8"))
        assert set(passwords) == {"compliance", APPROVER, "auditor", TRIGGERED_BY}
        admin = Api.log_in(base, TRIGGERED_BY, passwords[TRIGGERED_BY])
        deadline = time.monotonic() + 180
        while True:  # until the dag-processor has stored the DAG
            status, body = admin("GET", f"/dags/{DAG_ID}")
            if status == 200 and body.get("is_paused") is False:
                break
            assert time.monotonic() < deadline, f"the DAG was not parsed: {body}\n{tail(home / 'standalone.log')}"
            time.sleep(1)
        yield Local(base, passwords, home / "standalone.log", tmp / "out", tmp / "staging", ledger_url)
    finally:
        stop(script, timeout=60)


def task_state(api: Api, run_id: str, task_id: str) -> str | None:
    ti = api.get(f"{RUN_URL.format(dag_id=DAG_ID, run_id=urllib.parse.quote(run_id))}/taskInstances/{task_id}")
    return ti.get("state")


def wait_for_state(local: Local, api: Api, run_id: str, task_id: str, wanted: str) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while (state := task_state(api, run_id, task_id)) != wanted:
        assert state not in ("failed", "upstream_failed", "skipped"), f"{task_id} {state}\n{tail(local.log, 60)}"
        assert time.monotonic() < deadline, f"{task_id} still {state}\n{tail(local.log, 60)}"
        time.sleep(2)


def hitl_detail(api: Api, run_id: str) -> dict[str, Any]:
    return api.get(
        f"{RUN_URL.format(dag_id=DAG_ID, run_id=urllib.parse.quote(run_id))}/taskInstances/approve/-1/hitlDetails"
    )


def screenshot(browser: Chromium, name: str) -> None:
    """Into DAC7_SCREENSHOTS_DIR (the documentation's images), when it is set."""
    target = os.environ.get("DAC7_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / name).write_bytes(browser.screenshot())


def click(browser: Chromium, label: str) -> None:
    """Scrolls the button into view (the screenshot shows it, and what the request says above it), clicks it."""
    button = f"{BUTTONS}.find(b => b.innerText.trim() === {json.dumps(label)})"
    browser.evaluate(f"{button}.scrollIntoView({{block: 'center'}})")
    browser.evaluate(f"{button}.click()")


def body_text(browser: Chromium) -> str:
    return str(browser.evaluate("document.body.innerText"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_approver_not_the_person_who_triggered_publishes_a_production_filing(local: Local, tmp_path: Path) -> None:
    admin = Api.log_in(local.base, TRIGGERED_BY, local.passwords[TRIGGERED_BY])
    status, run = admin(
        "POST", f"/dags/{DAG_ID}/dagRuns", {"logical_date": "2026-01-20T06:00:00Z", "conf": {"environment": "prod"}}
    )
    assert status == 200, run
    run_id = run["dag_run_id"]
    assert run["triggering_user_name"] == TRIGGERED_BY
    wait_for_state(local, admin, run_id, "approve", "awaiting_input")

    detail = hitl_detail(admin, run_id)
    assert detail["assigned_users"] == [{"id": APPROVER, "name": APPROVER}, {"id": "compliance", "name": "compliance"}]
    [run_dir] = [p for p in local.staging.iterdir() if p.name.startswith(f"{YEAR}-")]
    messages = json.loads((run_dir / "render" / "authorities" / f"{FILING_STATE}.json").read_text(encoding="utf-8"))[
        "messages"
    ]
    assert messages
    for m in messages:  # the rendered bytes are those the render recorded
        assert hashlib.sha256((run_dir / "render" / m["file"]).read_bytes()).hexdigest() == m["sha256"]
    required_actions = f"/dags/{DAG_ID}/runs/{run_id}/tasks/approve/required_actions"

    # the person who triggered: sees the request and the buttons, and is refused
    with Chromium.launch(tmp_path / "chromium-admin", width=1400, height=1100) as browser:
        log_in(browser, local.base, local.passwords[TRIGGERED_BY], required_actions, user=TRIGGERED_BY)
        wait_for(browser, f"{BUTTONS}.some(b => b.innerText.trim() === 'Approve')", "the Approve button", 60)
        text = body_text(browser)
        assert f"DAC7 {YEAR}: production filing in {FILING_STATE}" in text
        assert f"Triggered by: {TRIGGERED_BY}." in text
        assert f"an approval by {TRIGGERED_BY} is refused and this request stays open for another person" in text
        assert "Asked to approve: approver, compliance" in text
        screenshot(browser, "four-eyes-request.png")
        click(browser, "Approve")
        wait_for(browser, "document.body.innerText.includes('Access Denied')", "Airflow's refusal", 30)
        time.sleep(1)  # the message has faded in
        screenshot(browser, "four-eyes-refused.png")
    time.sleep(3)  # a task resumed by the answer would have left awaiting_input by now
    assert task_state(admin, run_id, "approve") == "awaiting_input"
    detail = hitl_detail(admin, run_id)
    assert detail["response_received"] is False and detail["responded_by_user"] is None
    assert not (local.out / str(YEAR) / FILING_STATE).exists()

    # the approver: reads the request, opens the pending file, approves
    with Chromium.launch(tmp_path / "chromium-approver", width=1400, height=1100) as browser:
        log_in(browser, local.base, local.passwords[APPROVER], required_actions, user=APPROVER)
        wait_for(browser, f"{BUTTONS}.some(b => b.innerText.trim() === 'Approve')", "the Approve button", 60)
        text = body_text(browser)
        for m in messages:
            assert m["message_ref_id"] in text and m["sha256"] in text, text
        links = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('a')].filter(a => a.href.includes('/dac7/pending/'))"
            ".map(a => [a.innerText.trim(), a.href]))"
        )
        for m in messages:
            name = m["file"].rsplit("/", 1)[-1]
            url = links[name]
            assert url == f"{local.base}/dac7/pending/{run_dir.name}/{m['file']}"
            got = browser.call(FETCH, url)  # as the link opens it, with the approver's session
            assert got["status"] == 200 and got["type"] == "application/xml", got
            assert got["disposition"] == f'attachment; filename="{name}"'
            assert got["sha256"] == m["sha256"]
            # without the download permission, or without a login: refused
            auditor = Api.log_in(local.base, "auditor", local.passwords["auditor"])
            assert request(url, f"_token={auditor.token}")[0] == 403
            assert request(url)[0] == 401
        pending_url = f"{local.base}/dac7/pending/{run_dir.name}/"
        assert pending_url in links.values(), links
        browser.navigate(pending_url)
        wait_for(browser, "document.querySelector('#pending-files')", "the pending page")
        pending = body_text(browser)
        assert f"triggered by {TRIGGERED_BY}" in pending and "Asked to approve: approver, compliance." in pending
        for m in messages:
            assert m["message_ref_id"] in pending and m["sha256"] in pending
        screenshot(browser, "four-eyes-pending.png")
        # the DAC7 runs page: this run waits for an approval, triggered by admin
        browser.navigate(f"{local.base}/dac7/runs?dag={DAG_ID}")
        wait_for(browser, "document.querySelector('#runs')", "the runs page")
        [row] = browser.call(
            "(runId) => [...document.querySelectorAll('#runs tr')].filter(r => r.innerText.includes(runId))"
            ".map(r => [...r.cells].map(c => c.innerText.trim()))",
            run_id,
        )
        assert row[0] == f"annual filing\n{run_id}" and row[1:3] == ["running", TRIGGERED_BY], row
        assert row[5].startswith("waiting for an approval"), row
        screenshot(browser, "desk-runs.png")
        browser.navigate(f"{local.base}{required_actions}")
        wait_for(browser, f"{BUTTONS}.some(b => b.innerText.trim() === 'Approve')", "the Approve button", 60)
        click(browser, "Approve")
        wait_for_state(local, admin, run_id, "finalize", "success")
        screenshot(browser, "four-eyes-approved.png")

    # after the approval: the runs page shows the run's success and its outcome (the run note)
    approver = Api.log_in(local.base, APPROVER, local.passwords[APPROVER])
    deadline = time.monotonic() + 60
    while True:
        status, page = request(f"{local.base}/dac7/runs?dag={DAG_ID}&state=success", f"_token={approver.token}")
        text = page.decode("utf-8", "replace")
        if (status == 200 and run_id in text and "no outcome yet" not in text) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert status == 200 and run_id in text, text[:2000]
    assert "approved" in text and f"{len(messages)} file" in text, text[:4000]

    log = local.log.read_text(encoding="utf-8", errors="replace")
    for m in messages:
        assert f"DAC7 pending download by {APPROVER}: {run_dir.name}/{m['file']} sha256 {m['sha256']}" in log
    manifest = json.loads((local.out / str(YEAR) / "manifest.json").read_text(encoding="utf-8"))
    assert [(f["message_ref_id"], f["sha256"]) for f in manifest["files"]] == [
        (m["message_ref_id"], m["sha256"]) for m in messages
    ]
    from reporting.ledger import open_ledger

    with open_ledger(local.ledger_url, create=False) as ledger:
        filed = ledger.messages(year=YEAR, environment="prod")
    assert [(m.message_ref_id, m.status, m.triggered_by, m.approved_by) for m in filed] == [
        (m["message_ref_id"], "published", TRIGGERED_BY, APPROVER) for m in messages
    ]


# ------------------------------------------------------------------------------------ fast checks


@pytest.fixture
def dac7_pending(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_pending

    return dac7_pending


RUN = "2025-0b1f6c2e-4d3a-4e5f-8a7b-0c1d2e3f4a5b"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "staging" / RUN
    for name in ("render/LT/a.xml", "render/LT/unlisted.xml", "settings.json"):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(name, encoding="utf-8")
    sha = hashlib.sha256(b"render/LT/a.xml").hexdigest()
    (run / "render" / "plan.json").write_text(json.dumps({"authorities": ["LT"]}), encoding="utf-8")
    (run / "render" / "authorities").mkdir()
    (run / "render" / "authorities" / "LT.json").write_text(
        json.dumps(
            {
                "messages": [
                    {
                        "file": "LT/a.xml",
                        "message_ref_id": "LT1",
                        "message_type_indic": "DPI401",
                        "sha256": sha,
                        "records": {"new": 2},
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    (tmp_path / "secret.txt").write_text("not rendered", encoding="utf-8")
    (run / "render" / "LT" / "escape.xml").symlink_to(tmp_path / "secret.txt")
    return run


def test_a_pending_file_is_served_only_if_the_render_lists_it(dac7_pending: Any, run_dir: Path) -> None:
    from reporting.files import file_sha256

    target, sha = dac7_pending.pending_file(run_dir, "LT/a.xml")
    assert target == (run_dir / "render" / "LT" / "a.xml").resolve()
    assert sha == hashlib.sha256(b"render/LT/a.xml").hexdigest() == file_sha256(target)
    for path in ("LT/unlisted.xml", "LT/escape.xml", "../settings.json", "LT/../LT/a.xml", "LT//a.xml", "", "LT"):
        assert dac7_pending.pending_file(run_dir, path) is None, path


def test_only_a_run_name_finds_a_staging_directory(dac7_pending: Any, run_dir: Path) -> None:
    root = run_dir.parent
    assert dac7_pending.run_dir(root, RUN) == run_dir
    for name in ("..", "2025-x", RUN.upper(), f"{RUN}/..", "2025-0b1f6c2e-4d3a-4e5f-8a7b-0c1d2e3f4a5c"):
        assert dac7_pending.run_dir(root, name) is None, name
    assert dac7_pending.staging_root({}) is None
    assert dac7_pending.staging_root({"DAC7_STAGING_DIR": str(root)}) == root


def test_the_pending_page_lists_the_files_and_the_refused_answers(dac7_pending: Any, run_dir: Path) -> None:
    from lxml import html

    (run_dir / "approval").mkdir()
    (run_dir / "approval" / "refused.jsonl").write_text(
        json.dumps({"at": "2026-01-20T06:10:00+00:00", "user": "admin", "answer": "Approve", "reason": "<why>"}) + "\n",
        encoding="utf-8",
    )
    page = html.fromstring(dac7_pending.pending_page(run_dir, may_download=True))
    [row] = page.xpath("//table[@id='pending-files']/tr[td]")
    cells = [c.text_content() for c in row.xpath("td")]
    sha = hashlib.sha256(b"render/LT/a.xml").hexdigest()
    assert cells == ["LT", "LT1", "DPI401 (new information)", "2 new", "a.xml", sha, "waiting"], cells
    assert row.xpath(".//a[@class='download pending']/@href") == ["LT/a.xml"]
    [refused] = page.xpath("//table[@id='refused']/tr[td]")
    assert [c.text_content() for c in refused.xpath("td")] == ["2026-01-20T06:10:00+00:00", "admin", "Approve", "<why>"]
    viewer = html.fromstring(dac7_pending.pending_page(run_dir, may_download=False))
    assert not viewer.xpath("//a[contains(@class, 'pending')]")


def test_approvers_are_read_from_one_comma_separated_setting() -> None:
    from dac7_support.approval import asked_approvers, configured_approvers

    approvers = configured_approvers(" approver, compliance ,7=carol,, approver")
    assert approvers == [
        {"id": "approver", "name": "approver"},
        {"id": "compliance", "name": "compliance"},
        {"id": "7", "name": "carol"},
    ]
    assert asked_approvers(approvers, "compliance") == [approvers[0], approvers[2]]
    assert asked_approvers(approvers, "carol") == approvers[:2]
    assert asked_approvers(approvers, None) == approvers
    assert configured_approvers(None) == configured_approvers("") == []


def test_corrections_and_deletions_are_counted_per_authority() -> None:
    from dac7_support.approval import changes_per_authority, confirmation_body

    rendered = {
        "DE": {"messages": [{"message_type_indic": "DPI401", "records": {"new": 5}}]},
        "FR": {
            "messages": [
                {"message_type_indic": "DPI401", "records": {"new": 1}},
                {"message_type_indic": "DPI402", "records": {"correction": 3, "deletion": 2}},
            ]
        },
    }
    changes = changes_per_authority(rendered)
    assert changes == {"FR": {"corrections": 3, "deletions": 2, "dpi402": 1}}
    body = confirmation_body({"year": 2025, "changes": changes})
    assert "| FR | 3 | 2 | 1 |" in body and "| DE |" not in body


def test_the_request_counts_the_quarantined_and_the_incomplete_sellers(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from dac7_support.approval import held_back

    rules = tmp_path / "rules"
    rules.mkdir()
    decisions = {
        "reported": 9,
        "quarantined:tin.missing": 2,
        "quarantined:address.incomplete": 1,
        "excluded:de_minimis": 4,
    }
    (rules / "rules.json").write_text(json.dumps({"decisions": decisions}), encoding="utf-8")
    assert held_back(tmp_path) == (3, {})
    pq.write_table(
        pa.table({"seller_id": ["S1", "S2"], "authorities": [["DE", "FR"], ["DE"]]}),
        rules / "reportable_incomplete.parquet",
    )
    assert held_back(tmp_path) == (3, {"DE": 2, "FR": 1})
