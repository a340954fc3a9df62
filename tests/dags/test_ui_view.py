"""The DAC7 view (``plugins/``) in a real Airflow, seen by a real headless Chromium.

A demo marketplace is filed once in production through the pipeline (routing ``nexus``: one
message to LT, the demo operator's filing state; a preview never writes the filing ledger the
view shows), into an output directory and a SQLite ledger of this test; a synthetic EU status
message then rejects one seller record of it (a partial rejection), and a test rerun of that one
authority publishes into the same output after it. (With ``DAC7_SCREENSHOTS_DIR=docs/img`` the
images of ``docs/desk-view.md`` are renewed.) An
``airflow api-server`` (a separate process, on a free port of 127.0.0.1, with a throwaway
AIRFLOW_HOME and an explicit environment) loads the project's plugins, with the simple auth
manager and three users of a passwords file of the test's own: ``compliance`` (role op, which
may download), ``auditor`` (role viewer: the view only) and ``outsider`` (no role: nothing).

In Chromium, the user logs in through Airflow's real login page, finds "DAC7" in the UI's
navigation, opens it (the view in its iframe), goes to the year, and sees the filings: an
authority, a MessageRefId of the manifest, the status from the status message with its error
code and the rejected seller id, and no personal data in the page. A file is downloaded by
fetching its link in the browser: its SHA-256 is that of the published file. Then, from this
process: the same URLs without a login are refused (401), with a forged token too (403), and,
with the browser's session, paths that leave the published files are not found; the download is
in the api-server's log with the user and the file's sha256, and every answer carries the
Content-Security-Policy. The auditor sees the statuses and counts without a download link and is
refused every file with personal data or seller-level figures; the outsider is refused everything.

Two fast tests beside it: the plugin module and its helper load through Airflow's plugin manager
without FastAPI, ``reporting`` (its vocabulary aside), pandas, lxml or Great Expectations (Airflow
imports plugins in every process); and which paths ``dac7_view.published_file`` serves.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow_stack import api_server, base_env, free_port, request, stop, wait_until_healthy
from browser import BrowserError, Chromium
from builders import write_config
from integration.test_ledger_lifecycle import status_message
from integration.test_no_personal_data import YEAR, assert_no_personal_data, generate_source, read_secrets
from lxml import etree

from reporting.ledger import open_ledger
from reporting.ledger.status import import_status
from reporting.pipeline import run

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
USER = "compliance"  # role op: sees the view and downloads (DOWNLOAD_ROLES)
AUDITOR = "auditor"  # role viewer: sees statuses and counts, downloads nothing
OUTSIDER = "outsider"  # no role: not even the view
ROLES = {USER: "op", AUDITOR: "viewer", OUTSIDER: ""}
RUN_ID = "9b1f6c2e-4d3a-4e5f-8a7b-0c1d2e3f4a5b"  # the production filing
TEST_RUN_ID = "4e2d8a1c-7b3f-4c9d-a6e5-2f1b0c9d8e7a"  # the test rerun of one authority, after it
#: where the screenshots go without DAC7_SCREENSHOTS_DIR: the temporary directory, never the checkout
SHOTS = Path(tempfile.gettempdir()) / "dac7-view-screenshots"
STATUS_CODE = "40080"  # the code of the synthetic status message's RecordError
LOGIN_INPUTS = "document.querySelector('input[name=username]') && document.querySelector('input[name=password]')"
# The view inside the Airflow UI: the iframe of the page /plugin/dac7.
FRAME = "document.querySelector('iframe')?.contentDocument"
FETCH = """async (url) => {
    const response = await fetch(url);
    const body = await response.arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
    return {
        status: response.status,
        type: response.headers.get("content-type"),
        disposition: response.headers.get("content-disposition"),
        size: body.byteLength,
        sha256: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
        text: new TextDecoder().decode(body.slice(0, 4096)),
    };
}"""


@dataclass(frozen=True)
class Filing:
    """The message whose seller record the status message rejected."""

    authority: str
    message_ref_id: str
    file: str
    seller: str


@dataclass(frozen=True)
class Stack:
    base: str  # http://127.0.0.1:<port>
    passwords: dict[str, str]
    log: Path  # the api-server's log
    out: Path  # the year's output directory
    manifest: dict[str, Any]  # the production run's
    rejected: Filing
    source: Path
    test_manifest: dict[str, Any]  # the test rerun's, published after it
    ledger: str  # the ledger's URL


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The pipeline's output and ledger, and an api-server that shows them."""
    tmp = tmp_path_factory.mktemp("ui-view")
    home, out_root, ledger = tmp / "airflow-home", tmp / "out", f"sqlite:///{tmp / 'ledger.sqlite3'}"
    home.mkdir()
    passwords = {user: secrets.token_urlsafe(12) for user in ROLES}
    (home / "passwords.json").write_text(json.dumps(passwords), encoding="utf-8")
    # The api-server finds the ledger as the tasks do without DAC7_LEDGER_URL: [ledger] url.
    config = write_config(tmp / "dac7.toml", routing="nexus", environment="prod")  # the filing, in LT
    config.write_text(config.read_text(encoding="utf-8") + f'\n[ledger]\nurl = "{ledger}"\n', encoding="utf-8")
    test_config = write_config(tmp / "dac7-test.toml", routing="nexus", environment="test")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = airflow_env(home, port) | {"DAC7_CONFIG": str(config), "DAC7_OUT_DIR": str(out_root)}
    log = tmp / "api-server.log"
    server = api_server(env, port, log)  # it starts while the pipeline runs here
    try:
        source = generate_source(tmp / "marketplace.db")
        manifest = run(
            config_path=config,
            source_url=f"sqlite:///{source}",
            year=YEAR,
            as_of=date(YEAR + 1, 1, 14),
            out_dir=out_root / str(YEAR),
            staging_root=tmp / "staging",
            run_id=RUN_ID,
            timestamp=datetime(YEAR + 1, 1, 15, 6, 0),
            ledger_url=ledger,
        ).manifest
        rejected = reject_one_seller(ledger, manifest, tmp / "status.xml")
        # a test rerun of one authority, later, into the same output: it must hide nothing
        test_manifest = run(
            config_path=test_config,
            source_url=f"sqlite:///{source}",
            year=YEAR,
            as_of=date(YEAR + 1, 1, 20),
            out_dir=out_root / str(YEAR),
            staging_root=tmp / "staging",
            run_id=TEST_RUN_ID,
            timestamp=datetime(YEAR + 1, 1, 20, 7, 30),
            ledger_url=ledger,
            authorities=(rejected.authority,),
        ).manifest
        wait_until_healthy(server, base, log)
        yield Stack(base, passwords, log, out_root / str(YEAR), manifest, rejected, source, test_manifest, ledger)
    finally:
        stop(server)


def airflow_env(home: Path, port: int) -> dict[str, str]:
    """The api-server's whole environment: this machine's basics, Airflow's settings of
    tests/dags/conftest.py with a home of its own, the simple auth manager with our user."""
    return base_env() | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in ROLES.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
    }


def reject_one_seller(ledger_url: str, manifest: dict[str, Any], path: Path) -> Filing:
    """Import a status message that rejects the first seller record of the first file with two
    sellers or more (the message itself accepted)."""
    file = next(f for f in manifest["files"] if f["sellers"] >= 2)
    with open_ledger(ledger_url, create=False) as ledger:
        record = next(r for r in ledger.records(file["message_ref_id"]) if r.kind == "seller")
        status = status_message(file["message_ref_id"], [record.doc_ref_id], STATUS_CODE)
        path.write_bytes(etree.tostring(status, xml_declaration=True, encoding="UTF-8"))
        import_status(ledger, path)
    assert record.seller_key is not None
    return Filing(file["authority"], file["message_ref_id"], file["file"], record.seller_key)


def raw_get(base: str, path: str, cookie: str) -> int:
    """GET of a path exactly as written (urllib and browsers remove ``..`` segments first)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        return conn.getresponse().status
    finally:
        conn.close()


def wait_for(browser: Chromium, expression: str, what: str, timeout: float = 30) -> None:
    """Until ``expression`` is truthy in the page (a page that is navigating has no document to
    evaluate in for a moment: that is retried too)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            if browser.evaluate(f"Boolean({expression})"):
                return
        except BrowserError as exc:
            last = exc
        time.sleep(0.1)
    with suppress(BrowserError):
        last = browser.evaluate("location.href + ': ' + document.body?.innerText.slice(0, 300)")
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (the page: {last})")


def log_in(browser: Chromium, base: str, password: str, next_path: str, user: str = USER) -> None:
    """Through Airflow's login page, typing into its form as a user would."""
    browser.navigate(f"{base}/auth/login?next={urllib.request.quote(next_path)}")
    wait_for(browser, LOGIN_INPUTS, "the login form")
    for name, text in (("username", user), ("password", password)):
        browser.evaluate(f"document.querySelector('input[name={name}]').focus()")
        browser.send("Input.insertText", text=text)
    browser.evaluate("document.querySelector('form').requestSubmit()")


# ------------------------------------------------------------------------------------ the view


@pytest.mark.slow
def test_compliance_staff_log_in_see_the_filings_and_download_a_file(stack: Stack, tmp_path: Path) -> None:
    base, rejected = stack.base, stack.rejected
    with Chromium.launch(tmp_path / "chromium", width=1400, height=1000) as browser:
        log_in(browser, base, stack.passwords[USER], "/plugin/dac7")

        # Airflow's UI, with DAC7 in its navigation and the view in its iframe
        wait_for(
            browser, f"location.pathname.startsWith('/plugin/dac7') && {FRAME}?.querySelector('#years')", "the view"
        )
        nav = browser.evaluate(
            "[...document.querySelectorAll('a')].filter(a => a.textContent.trim() === 'DAC7')"
            ".map(a => a.getAttribute('href'))"
        )
        assert any(href.rstrip("/").endswith("plugin/dac7") for href in nav), nav
        plugins = browser.call("async () => (await fetch('/api/v2/plugins')).json()")
        [dac7] = [p for p in plugins["plugins"] if p["name"] == "dac7"]
        assert [v["href"] for v in dac7["external_views"]] == ["dac7/"]
        assert [a["url_prefix"] for a in dac7["fastapi_apps"]] == ["/dac7"]
        errors = browser.call("async () => (await fetch('/api/v2/plugins/importErrors')).json()")
        assert errors["total_entries"] == 0, errors
        index_html = browser.evaluate(f"{FRAME}.documentElement.outerHTML")

        # the year: the latest run, its files and the ledger's filings, with the status message
        browser.evaluate(f"{FRAME}.querySelector('a[href=\"{YEAR}/\"]').click()")
        wait_for(browser, f"{FRAME}?.location.pathname === '/dac7/{YEAR}/' && {FRAME}.querySelector('#ledger')", "year")
        # the UI mirrors the view's address in its own, so that the page can be bookmarked
        wait_for(browser, f"location.pathname === '/plugin/dac7/dac7/{YEAR}/'", "the UI's address of the year")
        year_html = browser.evaluate(f"{FRAME}.documentElement.outerHTML")
        text = browser.evaluate(f"{FRAME}.body.innerText")
        assert f"DAC7 {YEAR}" in text
        filed = {f["authority"]: f["message_ref_id"] for f in stack.manifest["files"]}
        assert set(filed) <= set(text.split()) and set(filed.values()) <= set(text.split())
        row = browser.evaluate(
            f"[...{FRAME}.querySelectorAll('#ledger-{rejected.authority} tr')]"
            f".find(tr => tr.textContent.includes('{rejected.message_ref_id}'))?.innerText"
        )
        assert row and "partially rejected: 1 of " in row and STATUS_CODE in row and rejected.seller in row, row
        assert_no_personal_data(
            {"DAC7 index page": index_html, f"DAC7 {YEAR} page": year_html}, read_secrets(stack.source)
        )

        # a download, fetched through the page's own link
        links = browser.evaluate(
            f"Object.fromEntries([...{FRAME}.querySelectorAll('#files-prod a.download')].map(a => [a.title, a.href]))"
        )
        name = rejected.file.rsplit("/", 1)[-1]
        xml_url, published = links[name], stack.out / rejected.file
        got = browser.call(FETCH, xml_url)
        assert got["status"] == 200 and got["type"] == "application/xml", got
        assert got["disposition"] == f'attachment; filename="{name}"'
        assert got["size"] == published.stat().st_size
        listed = {f["file"]: f["sha256"] for f in stack.manifest["files"]}
        assert got["sha256"] == hashlib.sha256(published.read_bytes()).hexdigest() == listed[rejected.file]
        report_url = browser.evaluate(f"{FRAME}.querySelector('#due-diligence-report-prod').href")
        report = browser.call(FETCH, report_url)
        assert report["status"] == 200 and report["type"].startswith("text/html"), report
        kept = stack.out / "runs" / RUN_ID / "reports/due_diligence.html"  # the production run's own report
        assert report["sha256"] == hashlib.sha256(kept.read_bytes()).hexdigest()

        [token] = [
            c["value"] for c in browser.send("Network.getCookies", urls=[base])["cookies"] if c["name"] == "_token"
        ]

    session = f"_token={token}"
    year_url = f"{base}/dac7/{YEAR}/"
    urls = [f"{base}/dac7/", year_url, f"{year_url}?authority={rejected.authority}", xml_url, report_url]
    assert all(request(url, session)[0] == 200 for url in urls)
    # without a login, or with a forged token: refused, and nothing of the view in the answer
    for url in urls:
        status, body = request(url)
        assert status == 401 and b"Log in to Airflow" in body and rejected.seller.encode() not in body, url
        assert request(url, "_token=forged.token.value")[0] == 403, url
    # with the session: only the published files, nothing beside or above them
    prefix = f"/dac7/{YEAR}/files/"
    for path in (
        "manifest.json",
        f"{rejected.file}/../../manifest.json",
        "reports/../manifest.json",
        "reports/..%2f..%2fmanifest.json",
        "reports/%2e%2e/manifest.json",
        "..%2f..%2fledger.sqlite3",
        "%2fetc%2fpasswd",
        "reports/",
        f"runs/{RUN_ID}/manifest.json",
        f"runs/{RUN_ID}/reports/../manifest.json",
    ):
        assert raw_get(base, prefix + path, session) == 404, path
    assert raw_get(base, prefix + rejected.file, session) == 200
    # every download is logged with the user and the sha256 of what left
    server_log = stack.log.read_text(encoding="utf-8", errors="replace")
    sha = listed[rejected.file]
    assert f"DAC7 download by {USER}: {YEAR}/{rejected.file} sha256 {sha}" in server_log
    # every page and file carries the Content-Security-Policy: no script, nothing from elsewhere
    for url in (f"{base}/dac7/", year_url, xml_url):
        policy = response_headers(url, session).get("content-security-policy", "")
        assert "script-src 'none'" in policy and "default-src 'none'" in policy, (url, policy)


MEANING_40080 = (
    "40080: If a TIN is provided (not flagged unknown and has a value), the issuing jurisdiction must be provided."
)
ROW_OF = "[...document.querySelectorAll('#ledger-{authority} tr')].find(tr => tr.textContent.includes('{ref}'))"
WIDTH = 1280


def screenshot(browser: Chromium, name: str, scroll_to: str | None = None) -> None:
    """A picture of the page (``view-<name>.png``), scrolled to an element: into
    ``$DAC7_SCREENSHOTS_DIR`` when set (``docs/img`` renews the images of ``docs/desk-view.md``),
    else beside the test's files, so that a test run leaves the checkout unchanged."""
    if scroll_to:
        browser.evaluate(f"document.querySelector('{scroll_to}').scrollIntoView()")
    folder = Path(os.environ.get("DAC7_SCREENSHOTS_DIR") or SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"view-{name}.png").write_bytes(browser.screenshot())


def fits_the_screen(browser: Chromium) -> bool:
    """No horizontal scrolling, and no table wider than the page's body (inside its margins)."""
    return bool(
        browser.evaluate(
            f"document.documentElement.scrollWidth <= {WIDTH} && [...document.querySelectorAll('table')]"
            ".every(t => t.getBoundingClientRect().right <= document.body.getBoundingClientRect().right + 1)"
        )
    )


@pytest.mark.slow
def test_an_older_production_file_downloads_after_a_test_rerun(stack: Stack, tmp_path: Path) -> None:
    """Production, then a test rerun of one authority: the production message still downloads from
    its ledger row (the year's manifest.json is the test rerun's), "Latest production run" is
    still the production run, and its partial rejection is a warning with its count and the
    meaning of the authority's code."""
    base, rejected = stack.base, stack.rejected
    assert json.loads((stack.out / "manifest.json").read_text(encoding="utf-8"))["run_id"] == TEST_RUN_ID
    [test_file] = stack.test_manifest["files"]
    with open_ledger(ledger_of(stack), create=False) as ledger:
        records = len(ledger.records(rejected.message_ref_id))
        assert ledger.message(rejected.message_ref_id).environment == "prod"
    with Chromium.launch(tmp_path / "chromium", width=WIDTH, height=900) as browser:
        log_in(browser, base, stack.passwords[USER], f"/dac7/{YEAR}/")
        wait_for(browser, "document.querySelector('#run-prod')", "the year page")
        prod = browser.evaluate("document.querySelector('#run-facts-prod').innerText")
        assert RUN_ID in prod and "production" in prod and TEST_RUN_ID not in prod
        test = browser.evaluate("document.querySelector('#run-facts-test').innerText")
        assert TEST_RUN_ID in test and RUN_ID not in test
        summary = browser.evaluate("document.querySelector('#run-summary-report-prod').getAttribute('href')")
        assert summary == f"files/runs/{RUN_ID}/reports/run_summary.html"

        # the production message, from its ledger row, and the test rerun's beside it
        row = ROW_OF.format(authority=rejected.authority, ref=rejected.message_ref_id)
        # (fetched with the browser's session: the view's pages may fetch nothing, connect-src 'none')
        session = session_of(browser, base)
        status, body = request(browser.evaluate(f"{row}.querySelector('a.download').href"), session)
        listed = {f["file"]: f["sha256"] for f in stack.manifest["files"]}
        published = hashlib.sha256((stack.out / rejected.file).read_bytes()).hexdigest()
        assert status == 200 and hashlib.sha256(body).hexdigest() == published == listed[rejected.file]
        # the page's navigation: the overview, the due-diligence list, the seller search, the board
        for url in browser.evaluate("[...document.querySelectorAll('nav a')].map(a => a.href)"):
            assert request(url, session)[0] == 200, url
        test_row = ROW_OF.format(authority=test_file["authority"], ref=test_file["message_ref_id"])
        status, body = request(browser.evaluate(f"{test_row}.querySelector('a.download').href"), session)
        assert status == 200 and hashlib.sha256(body).hexdigest() == test_file["sha256"]

        # the partial rejection: a warning badge with the count, the code with its meaning
        badge = browser.evaluate(
            f"[{row}.querySelector('.status').className, {row}.querySelector('.status').innerText]"
        )
        assert badge == ["status status-partial", f"partially rejected: 1 of {records} records"]
        text = browser.evaluate(f"{row}.innerText")
        assert f"1 of {records} record(s) rejected" in text and MEANING_40080 in text
        assert "records: " + f"{records - 1} accepted, 1 rejected" in text
        assert "in the published file, not answered yet" in browser.evaluate(f"{test_row}.innerText")
        assert fits_the_screen(browser)
        screenshot(browser, "ledger", "#ledger")
        screenshot(browser, "latest-production-run", "#run-prod")
        screenshot(browser, "latest-test-run", "#run-test")


@pytest.mark.slow
def test_the_overview_splits_production_and_test_and_filters(stack: Stack, tmp_path: Path) -> None:
    rows = "[...document.querySelectorAll('#years tr')].slice(1).map(tr => [...tr.cells].map(c => c.innerText))"
    with Chromium.launch(tmp_path / "chromium", width=WIDTH, height=700) as browser:
        log_in(browser, stack.base, stack.passwords[USER], "/dac7/")
        wait_for(browser, "document.querySelector('#years')", "the overview")
        assert browser.evaluate(rows) == [
            [str(YEAR), "production", "1", "LT", "1 partially rejected", "yes"],
            [str(YEAR), "test", "1", "LT", "1 published", "yes"],
        ]
        screenshot(browser, "overview")
        for field, value, expected in (
            ("environment", "prod", [[str(YEAR), "production", "1", "LT", "1 partially rejected", "yes"]]),
            ("status", "published", [[str(YEAR), "test", "1", "LT", "1 published", "yes"]]),
        ):
            browser.evaluate(
                "(() => { const form = document.querySelector('#filters');"
                " form.querySelectorAll('select').forEach(s => { s.value = ''; });"
                f" form.querySelector('select[name={field}]').value = '{value}'; form.requestSubmit(); }})()"
            )
            wait_for(browser, f"location.search.includes('{field}={value}') && document.querySelector('#years')", field)
            assert browser.evaluate(rows) == expected, (field, value)
        screenshot(browser, "overview-filtered")


@pytest.mark.slow
def test_the_due_diligence_list_sorts_filters_and_exports(stack: Stack, tmp_path: Path) -> None:
    kept = stack.out / "runs" / RUN_ID / "reports" / "due_diligence.csv"
    with kept.open(newline="", encoding="utf-8") as fh:
        findings = list(csv.DictReader(fh))
    kind, count = Counter(r["kind"] for r in findings).most_common(1)[0]
    shown = "[...document.querySelectorAll('#dd-findings tr')].slice(1).map(tr => tr.cells[0].innerText)"
    with Chromium.launch(tmp_path / "chromium", width=WIDTH, height=900) as browser:
        log_in(browser, stack.base, stack.passwords[USER], f"/dac7/{YEAR}/due-diligence")
        wait_for(browser, "document.querySelector('#dd-findings')", "the due-diligence list")
        sellers = len({r["seller_id"] for r in findings})
        assert browser.evaluate("document.querySelector('#dd-count').innerText").startswith(
            f"{len(findings)} of {len(findings)} finding(s), {sellers} seller(s)."
        )
        assert RUN_ID in browser.evaluate("document.body.innerText")  # the production run's list
        assert fits_the_screen(browser)
        browser.evaluate(
            f"(() => {{ const f = document.querySelector('#dd-filters');"
            f" f.querySelector('select[name=kind]').value = {json.dumps(kind)}; f.requestSubmit(); }})()"
        )
        wait_for(browser, "location.search.includes('kind=') && document.querySelector('#dd-count')", "the filter")
        of_kind = sorted(r["seller_id"] for r in findings if r["kind"] == kind)
        assert browser.evaluate(shown) == of_kind and len(of_kind) == count
        # sorted by seller, descending: a click on the header
        browser.evaluate("[...document.querySelectorAll('a.sort')].find(a => a.innerText.startsWith('Seller')).click()")
        wait_for(browser, "location.search.includes('order=desc') && document.querySelector('#dd-count')", "the sort")
        assert browser.evaluate(shown) == sorted(of_kind, reverse=True)
        screenshot(browser, "due-diligence")
        # the export: exactly the rows shown, in their order
        export = browser.evaluate("document.querySelector('#dd-export').href")
        status, body = request(export, session_of(browser, stack.base))
        assert status == 200, body[:300]
        exported = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
        assert [r["seller_id"] for r in exported] == sorted(of_kind, reverse=True)
        assert {r["kind"] for r in exported} == {kind}
        # the HTML report fits the screen and links back to the list
        browser.navigate(f"{stack.base}/dac7/{YEAR}/files/runs/{RUN_ID}/reports/due_diligence.html")
        wait_for(browser, "document.querySelector('#back-to-view')", "the report")
        assert fits_the_screen(browser)
        screenshot(browser, "due-diligence-report")
        browser.evaluate("document.querySelector('#back-to-view').click()")
        wait_for(browser, f"location.pathname === '/dac7/{YEAR}/due-diligence'", "the list, from the report")


def ledger_of(stack: Stack) -> str:
    return f"sqlite:///{stack.out.parent.parent / 'ledger.sqlite3'}"


def response_headers(url: str, cookie: str) -> dict[str, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers={"Cookie": cookie}), timeout=10) as response:
            return {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        return {k.lower(): v for k, v in exc.headers.items()}


def session_of(browser: Chromium, base: str) -> str:
    [token] = [c["value"] for c in browser.send("Network.getCookies", urls=[base])["cookies"] if c["name"] == "_token"]
    return f"_token={token}"


@pytest.mark.slow
def test_a_viewer_sees_statuses_and_counts_but_downloads_nothing(stack: Stack, tmp_path: Path) -> None:
    """The view permission alone: the pages with every status and count, no download link, and
    every filing, seller-level report and explanation refused (403) when asked for directly; the
    run summary (totals and charts, no seller) stays open."""
    base, rejected = stack.base, stack.rejected
    with Chromium.launch(tmp_path / "chromium", width=1400, height=1000) as browser:
        log_in(browser, base, stack.passwords[AUDITOR], f"/dac7/{YEAR}/", user=AUDITOR)
        wait_for(browser, "document.querySelector('#ledger')", "the year page")
        text = browser.evaluate("document.body.innerText")
        assert rejected.message_ref_id in text and STATUS_CODE in text and "partially rejected" in text
        # the run summaries (totals and charts, no seller) are the only files it may open
        assert browser.evaluate("document.querySelectorAll('a.download:not([href$=\"run_summary.html\"])').length") == 0
        assert "no download permission" in text
        assert browser.evaluate("document.querySelector('[id^=due-diligence-report]')") is None
        # the page's Content-Security-Policy lets no script of it reach anything (connect-src 'none')
        probe = "async (u) => { try { await fetch(u); return 'fetched'; } catch (e) { return 'blocked'; } }"
        assert browser.call(probe, f"{base}/dac7/{YEAR}/") == "blocked"
        session = session_of(browser, base)
    status, body = request(f"{base}/dac7/{YEAR}/files/{rejected.file}", session)
    assert status == 403 and b"DAC7 downloads" in body and b"role op or admin" in body
    files = [rejected.file, *(r for r in stack.manifest["reports"] if r != "reports/run_summary.html")]
    for path in files:
        assert request(f"{base}/dac7/{YEAR}/files/{path}", session)[0] == 403, path
    assert request(f"{base}/dac7/{YEAR}/files/reports/run_summary.html", session)[0] == 200
    server_log = stack.log.read_text(encoding="utf-8", errors="replace")
    assert f"DAC7 download refused: user {AUDITOR} may not download {YEAR}/{rejected.file}" in server_log
    assert f"DAC7 download by {AUDITOR}: {YEAR}/{rejected.file}" not in server_log
    assert f"DAC7 download by {AUDITOR}: {YEAR}/reports/run_summary.html sha256 " in server_log


@pytest.mark.slow
def test_a_user_without_the_view_permission_sees_nothing(stack: Stack, tmp_path: Path) -> None:
    base, rejected = stack.base, stack.rejected
    with Chromium.launch(tmp_path / "chromium", width=1200, height=900) as browser:
        log_in(browser, base, stack.passwords[OUTSIDER], f"/dac7/{YEAR}/", user=OUTSIDER)
        wait_for(browser, "document.title.startsWith('403')", "the refusal")
        assert rejected.message_ref_id not in browser.evaluate("document.body.innerText")
        session = session_of(browser, base)
    for path in (
        "/dac7/",
        f"/dac7/{YEAR}/",
        f"/dac7/{YEAR}/files/{rejected.file}",
        f"/dac7/{YEAR}/files/reports/run_summary.html",
    ):
        status, body = request(base + path, session)
        assert status == 403 and rejected.message_ref_id.encode() not in body, path


@pytest.mark.slow
def test_seller_statements_open_with_the_download_permission_and_count_for_everyone(
    stack: Stack, tmp_path: Path
) -> None:
    """Statements of the production filing recorded in the ledger (pages written as the
    statements feed's contract has them): the year page counts them for every user of the view;
    a statement's page opens for compliance staff only; marking one sent shows in the counts."""
    from reporting.cli import main

    base, file = stack.base, stack.manifest["files"][0]
    with open_ledger(stack.ledger, create=False) as ledger:
        sellers = [r for r in ledger.records(file["message_ref_id"]) if r.kind == "seller"][:2]
        lines = []
        for n, record in enumerate(sellers):
            statement_id = f"ui-statement-{n}"
            page = f"<!doctype html><html lang=en><title>Statement</title><p>Statement {n}</p></html>"
            html_path = f"statements/ui/{statement_id}.html"
            (stack.out / html_path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            (stack.out / html_path).write_text(page, encoding="utf-8")
            lines.append(
                {
                    "statement_id": statement_id,
                    "replaces": None,
                    "kind": "initial",
                    "seller_id": record.seller_key,
                    "year": YEAR,
                    "environment": "prod",
                    "language": "en",
                    "identity": {},
                    "filed_with": {
                        "country": file["authority"],
                        "message_ref_id": file["message_ref_id"],
                        "doc_ref_id": record.doc_ref_id,
                    },
                    "receiving_states": [],
                    "currency": "EUR",
                    "activities": [],
                    "html_path": html_path,
                    "sha256": hashlib.sha256(page.encode()).hexdigest(),
                }
            )
        feed = tmp_path / "statements.jsonl"
        feed.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        assert ledger.record_statements(feed, at=datetime(2026, 1, 20, 9)) == 2  # before the delivery below

    def counts(cookie: str) -> list[list[str]]:
        status, body = request(f"{base}/dac7/{YEAR}/", cookie)
        assert status == 200
        from lxml import html

        table = html.fromstring(body).xpath("//table[@id='statements-counts']//tr")
        return [[c.text_content() for c in tr.xpath("td")][:6] for tr in table[1:]]

    with Chromium.launch(tmp_path / "chromium", width=1200, height=900) as browser:
        log_in(browser, base, stack.passwords[USER], f"/dac7/{YEAR}/statements", user=USER)
        wait_for(browser, "document.querySelector('#statements')", "the statements page")
        links = browser.evaluate("[...document.querySelectorAll('#statements a.download')].map(a => a.href)")
        # the run's own statements are listed too (the pipeline writes and records them)
        links = [x for x in links if x.rsplit("/", 1)[-1].startswith("ui-statement-")]
        assert len(links) == 2
        compliance = session_of(browser, base)
    # the page's own Content-Security-Policy lets no script fetch: the link is followed from here
    status, body = request(links[0], compliance)
    assert status == 200 and b"Statement 0" in body and hashlib.sha256(body).hexdigest() == lines[0]["sha256"]
    with Chromium.launch(tmp_path / "chromium-auditor", width=1200, height=900) as browser:
        log_in(browser, base, stack.passwords[AUDITOR], f"/dac7/{YEAR}/statements", user=AUDITOR)
        wait_for(browser, "document.querySelector('#statements')", "the statements page")
        assert browser.evaluate("document.querySelectorAll('#statements a.download').length") == 0
        auditor = session_of(browser, base)
    status, body = request(f"{base}/dac7/{YEAR}/statements/ui-statement-0", auditor)
    # without the download permission: the masked page, rendered from the ledger's record
    assert status == 200 and b'id="masked"' in body and b"Statement 0" not in body
    # the run's own statements are counted too: these two add to its production ones
    before = {row[1]: row for row in counts(auditor)}["production"]
    assert before[0] == file["authority"] and int(before[2]) >= 2 and before[3:] == ["0", "0", "0"]
    for path in ("ui-statement-9", "..%2f..%2fledger.sqlite3", "ui-statement-0%2f..%2f..%2fmanifest.json"):
        assert raw_get(base, f"/dac7/{YEAR}/statements/{path}", compliance) == 404, path

    report = tmp_path / "delivery.csv"
    report.write_text("statement_id,time,status\nui-statement-0,2026-01-21T10:00:00Z,sent\n", encoding="utf-8")
    assert main(["statements", "mark-sent", "--file", str(report), "--ledger", stack.ledger]) == 0
    after = {row[1]: row for row in counts(compliance)}["production"]
    assert after == [file["authority"], "production", str(int(before[2]) - 1), "1", "0", "0"]
    server_log = stack.log.read_text(encoding="utf-8", errors="replace")
    assert f"DAC7 statement opened by {USER}: {YEAR}/ui-statement-0 sha256 {lines[0]['sha256']}" in server_log
    assert f"DAC7 statement shown masked to {AUDITOR}: {YEAR}/ui-statement-0" in server_log


# ------------------------------------------------------------------------------- fast checks


def test_the_plugin_loads_without_heavy_imports(tmp_path: Path) -> None:
    """Airflow imports the plugins folder in every process: the DAC7 plugin loads there without
    FastAPI, Airflow's API, ``reporting`` (but its vocabulary, a leaf) or the data libraries."""
    code = textwrap.dedent(
        """
        import json, sys
        from airflow import plugins_manager
        plugins_manager.ensure_plugins_loaded()
        heavy = ("fastapi", "airflow.api_fastapi.core_api.security", "pandas", "pyarrow", "lxml",
                 "great_expectations")
        # the plugins' labels are keyed by the words of reporting.vocabulary, a leaf that imports
        # nothing: that module alone of reporting may load with them
        light = {"reporting", "reporting.vocabulary"}
        reporting = [m for m in sys.modules if m.split(".")[0] == "reporting" and m not in light]
        print(json.dumps({
            "plugins": [p["name"] for p in plugins_manager.get_plugin_info()],
            "errors": plugins_manager.get_import_errors(),
            "heavy": [m for m in heavy if m in sys.modules] + sorted(reporting),
        }))
        """
    )
    env = airflow_env(tmp_path, free_port())
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "plugins": ["dac7", "dac7_run_outcome"],
        "errors": {},
        "heavy": [],
    }


@pytest.fixture
def dac7_view(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_view

    return dac7_view


@pytest.fixture
def year_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out" / str(YEAR)
    for name in ("DE/a.xml", "DE/unlisted.xml", "manifest.json", "reports/due_diligence.html", "reports/docs/i.html"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(name, encoding="utf-8")
    (tmp_path / "secret.txt").write_text("not published", encoding="utf-8")
    (out / "reports" / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (out / "reports" / "up").symlink_to(tmp_path)
    return out


MANIFEST = {"files": [{"file": "DE/a.xml"}], "reports": ["reports/due_diligence.html"]}


@pytest.mark.parametrize("path", ["DE/a.xml", "reports/due_diligence.html", "reports/docs/i.html"])
def test_published_files_are_served(dac7_view: Any, year_dir: Path, path: str) -> None:
    assert dac7_view.published_file(year_dir, MANIFEST, path) == (year_dir / path).resolve()


def test_files_published_by_earlier_runs_are_served_from_the_ledgers_list(dac7_view: Any, year_dir: Path) -> None:
    """A run that filed nothing (or crashed before its manifest) lists in ``published_files`` what
    the ledger says is published: the view serves those files too."""
    later = {"files": [], "published_files": [{"file": "DE/unlisted.xml"}], "reports": []}
    assert dac7_view.published_file(year_dir, later, "DE/unlisted.xml") == (year_dir / "DE/unlisted.xml").resolve()
    assert dac7_view.published_file(year_dir, later, "DE/a.xml") is None


@pytest.mark.parametrize(
    "path",
    [
        "",
        "manifest.json",  # not listed, not a report
        "DE/unlisted.xml",
        "DE",
        "reports",
        "reports/",
        "reports/docs",  # a directory
        "reports/missing.html",
        "/etc/passwd",
        "../secret.txt",
        "reports/../manifest.json",
        "DE/../manifest.json",
        "reports/./due_diligence.html",
        "reports//due_diligence.html",
        "reports\\..\\manifest.json",
        "reports/escape.txt",  # a symbolic link out of the output
        "reports/up/secret.txt",
        "DE/a.xml\x00.html",
    ],
)
def test_other_paths_are_refused(dac7_view: Any, year_dir: Path, path: str) -> None:
    assert dac7_view.published_file(year_dir, MANIFEST, path) is None


def test_the_view_reads_where_the_tasks_read(dac7_view: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path / "dac7.toml")
    config.write_text(config.read_text(encoding="utf-8") + '\n[ledger]\nurl = "sqlite:///from-config.db"\n')
    env = {"DAC7_CONFIG": str(config), "DAC7_OUT_DIR": str(tmp_path / "out")}
    assert dac7_view.sources(env) == dac7_view.Sources("sqlite:///from-config.db", tmp_path / "out")
    assert dac7_view.sources(env | {"DAC7_LEDGER_URL": "sqlite:///env.db"}).ledger_url == "sqlite:///env.db"
    missing = dac7_view.sources({})
    assert (missing.ledger_url, missing.out_root) == (None, None)
    assert [p.split(":")[0] for p in missing.problems] == [
        "No ledger is configured",
        "No output directory is configured",
    ]


def test_the_view_reads_the_ledger_from_an_airflow_connection(
    dac7_view: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DAC7_LEDGER_CONN_ID, as the tasks: the api-server reads the Connection (here from an
    ``AIRFLOW_CONN_*`` variable, as a secrets backend would give it); a missing one is a problem
    on the page that names the Connection, never a password."""
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_DAC7_VIEW_LEDGER",
        json.dumps(
            {"conn_type": "postgres", "host": "db", "login": "dac7", "password": "pw/S3cret", "schema": "ledger"}
        ),
    )
    env = {"DAC7_LEDGER_CONN_ID": "dac7_view_ledger", "DAC7_OUT_DIR": str(tmp_path / "out")}
    assert dac7_view.sources(env).ledger_url == "postgresql+psycopg://dac7:pw%2FS3cret@db/ledger"
    assert dac7_view.sources(env | {"DAC7_LEDGER_URL": "sqlite:///env.db"}).ledger_url == "sqlite:///env.db"
    missing = dac7_view.sources(env | {"DAC7_LEDGER_CONN_ID": "dac7_nowhere"})
    assert missing.ledger_url is None
    assert [p.split(":")[0] for p in missing.problems] == [
        "The ledger's Airflow Connection 'dac7_nowhere' (DAC7_LEDGER_CONN_ID) cannot be read"
    ]


def test_the_year_page_links_the_run_summary_and_serves_it(dac7_view: Any, tmp_path: Path) -> None:
    """Each year's page links its run summary page (charts) beside the due-diligence report; the
    link's target is a file the view serves. A run published before the page existed has no link."""
    from lxml import html

    year_dir = tmp_path / "out" / str(YEAR)
    (year_dir / "reports").mkdir(parents=True)
    for name in ("run_summary.html", "due_diligence.html"):
        (year_dir / "reports" / name).write_text("<!doctype html><title>report</title>", encoding="utf-8")
    reports = ["reports/due_diligence.html", "reports/run_summary.html"]
    manifest = {"reporting_year": YEAR, "files": [], "reports": reports, "summary": {"decisions": {}}}

    page = html.fromstring(dac7_view.year_page(dac7_view.YearView(YEAR, manifest, "", {}), None))
    [links] = page.xpath("//p[@id='run-reports-test']")  # a manifest without environment: a test run
    assert [(a.get("id"), a.text_content()) for a in links.xpath("a")] == [
        ("run-summary-report-test", "Run summary (charts)"),
        ("run-due-diligence-report-test", "Due-diligence report"),
    ]
    href = links.xpath("a[@id='run-summary-report-test']")[0].get("href")
    assert href == "files/reports/run_summary.html"  # relative to the year's page: <prefix>/<year>/files/...
    served = dac7_view.published_file(year_dir, manifest, href.removeprefix("files/"))
    assert served == (year_dir / "reports" / "run_summary.html").resolve()

    older = manifest | {"reports": ["reports/due_diligence.html"]}
    page = html.fromstring(dac7_view.year_page(dac7_view.YearView(YEAR, older, "", {}), None))
    assert not page.xpath("//a[@id='run-summary-report-test']")
    assert page.xpath("//a[@id='run-due-diligence-report-test']")
