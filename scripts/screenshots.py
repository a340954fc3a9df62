"""The README's screenshots of the Airflow UI: the DAC7 view and the trigger form of dac7_annual.

    .venv/bin/python scripts/screenshots.py [--out docs/img] [--keep]

Writes two PNGs into ``docs/img/`` (CSS pixels at scale 1, a viewport 1400 pixels wide):

- ``dac7-view.png`` (1400 x 900): the DAC7 view (``plugins/``) inside Airflow's UI at
  ``/plugin/dac7/dac7/2025/``, the year page of the demo filing: the filings in the ledger per
  authority (MessageRefId, environment, message type, sellers, records, status), i.e. the one
  message to LT, the member state the demo operator files in (``dac7.toml``, routing ``nexus``);
- ``trigger-form.png``: the DAG page of ``dac7_annual`` after a click on its "Trigger" button,
  clipped to the dialog with the run's Params (reporting year, as-of date, environment, filing
  mode, sellers to delete, authorities, and the operator of a group); the dialog is taller than 900
  pixels, so the viewport grows to hold all of it.

How: everything happens in a temporary directory, nothing in the checkout but the PNGs. The demo
marketplace of ``make demo`` (2,000 sellers, seed 7, reporting year 2025) is generated into a
SQLite file there and filed once through ``reporting.pipeline.run`` (as of 2026-01-14, run time
2026-01-15 06:00 UTC: what the DAG's run of 2026-01-15 files) into an output directory and a ledger
of its own, so that the pictures do not depend on an earlier ``make demo``. Meanwhile
``airflow db migrate``, ``airflow dags reserialize`` (the trigger form reads the DAG from the metadata database:
no scheduler or DAG processor is needed) and ``airflow api-server`` run with a throwaway
AIRFLOW_HOME and SQLite database, on a free port of 127.0.0.1 only, with the simple auth manager
and one user (``admin``) whose generated password is in a passwords file of the temporary
directory. Debian's headless Chromium (``make browser``; ``--chromium`` or ``DAC7_TEST_CHROMIUM``
for another one), driven through the DevTools protocol by ``tests/browser.py``, logs in through
Airflow's login page, opens both pages and waits until a known text has rendered before each
screenshot. At the end the browser and the api-server's process group are stopped and the temporary
directory removed (``--keep`` keeps it, with the api-server's log).

It takes about 35 seconds on an idle 2-core machine (the demo run and the api-server's start
overlap), about 70 seconds while other work shares the cores.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from airflow_stack import AIRFLOW, base_env, free_port, request, stop, tail  # noqa: E402
from browser import BrowserError, Chromium  # noqa: E402  (tests/ is on sys.path only now)

USER = "admin"  # role ADMIN: may read the DAC7 view and trigger runs (the trigger form needs that)
WIDTH, HEIGHT = 1400, 900
# the demo of the Makefile: `make demo`
DEMO_SELLERS, DEMO_SEED, YEAR = 2000, 7, 2025
AS_OF, RUN_TIME = date(2026, 1, 14), datetime(2026, 1, 15, 6, 0)
RUN_ID = "3f1e2d4c-5b6a-4789-8a0b-1c2d3e4f5a6b"  # fixed: the same MessageRefIds on every run
DAG_ID = "dac7_annual"
FRAME = "document.querySelector('iframe')?.contentDocument"
# the trigger dialog (the DAG page has other dialogs, e.g. its options menu)
DIALOG = "[...document.querySelectorAll('[role=dialog]')].find(d => d.innerText.includes('Trigger Dag'))"
MARGIN = 12  # CSS pixels of the page around the dialog in its screenshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="where the PNGs go (docs/img)")
    parser.add_argument("--chromium", default=None, help="the Chromium executable (default: chromium on PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    args = parser.parse_args(argv)

    chromium = args.chromium or os.environ.get("DAC7_TEST_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        print("screenshots.py: no chromium on PATH: run `make browser` (Debian's chromium package)", file=sys.stderr)
        return 2
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="dac7-screenshots-"))
    try:
        out_root, ledger = tmp / "out", tmp / "dac7-ledger.sqlite3"
        password = secrets.token_urlsafe(12)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with api_server(tmp, port, password, out_root, f"sqlite:///{ledger}") as server:
            file_demo(tmp, out_root, ledger)  # while the api-server starts
            wait_until_healthy(server, base, tmp / "api-server.log")
            args.out.mkdir(parents=True, exist_ok=True)
            with Chromium.launch(tmp / "chromium", executable=chromium, width=WIDTH, height=HEIGHT) as browser:
                log_in(browser, base, password)
                shoot_view(browser, base, args.out / "dac7-view.png")
                shoot_trigger_form(browser, base, args.out / "trigger-form.png")
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for name in ("dac7-view.png", "trigger-form.png"):
        path = args.out / name
        print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {path.stat().st_size // 1024} KB")
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


# ------------------------------------------------------------------------------------- the data


def file_demo(tmp: Path, out_root: Path, ledger: Path) -> None:
    """The demo marketplace of `make demo`, filed once: the output and ledger the view shows."""
    from dac7_demo import generate_demo
    from reporting.pipeline import run

    source = f"sqlite:///{tmp / 'marketplace.db'}"
    print(f"demo data: {DEMO_SELLERS} sellers, seed {DEMO_SEED}, reporting year {YEAR} ...", flush=True)
    generate_demo(source, sellers=DEMO_SELLERS, seed=DEMO_SEED, year=YEAR)
    manifest = run(
        config_path=REPO / "dac7.toml",
        source_url=source,
        year=YEAR,
        as_of=AS_OF,
        out_dir=out_root / str(YEAR),
        staging_root=tmp / "staging",
        run_id=RUN_ID,
        timestamp=RUN_TIME,
        ledger_url=f"sqlite:///{ledger}",
    ).manifest
    print(f"filed: {len(manifest['files'])} files, {sum(f['sellers'] for f in manifest['files'])} sellers", flush=True)


# ------------------------------------------------------------------------------------ the server


@contextmanager
def api_server(
    tmp: Path, port: int, password: str, out_root: Path, ledger_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``airflow db migrate``, ``dags reserialize``, then ``api-server``, in a process group of
    their own (stopped as a group when the block ends); the log is ``api-server.log`` in ``tmp``."""
    home = tmp / "airflow-home"
    home.mkdir()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: password}), encoding="utf-8")
    passwords.chmod(0o600)
    env = base_env() | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        # what the DAC7 view reads, as the tasks do
        "DAC7_CONFIG": str(REPO / "dac7.toml"),
        "DAC7_OUT_DIR": str(out_root),
        "DAC7_LEDGER_URL": ledger_url,
    }
    script = '"$0" db migrate && "$0" dags reserialize && exec "$0" api-server --host 127.0.0.1 --port "$1"'
    print(f"airflow api-server on 127.0.0.1:{port} (log in {tmp}/api-server.log) ...", flush=True)
    with (tmp / "api-server.log").open("wb") as log:
        server = subprocess.Popen(
            ["sh", "-c", script, str(AIRFLOW), str(port)],
            env=env,
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield server
    finally:
        stop(server)


def wait_until_healthy(server: subprocess.Popen[bytes], base: str, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the api-server exited with {server.returncode}:\n{tail(log)}")
        with suppress(OSError):
            if request(f"{base}/api/v2/monitor/health")[0] == 200:  # without a proxy
                return
        time.sleep(0.25)
    raise SystemExit(f"the api-server did not answer within {timeout:g} s:\n{tail(log)}")


# ----------------------------------------------------------------------------------- the browser


def wait_for(browser: Chromium, expression: str, what: str, timeout: float = 60) -> None:
    """Until ``expression`` is truthy in the page (retried while the page navigates)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(BrowserError):
            if browser.evaluate(f"Boolean({expression})"):
                return
        time.sleep(0.1)
    page = "?"
    with suppress(BrowserError):
        page = browser.evaluate("location.href + ': ' + document.body?.innerText.slice(0, 300)")
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what} (the page: {page})")


def log_in(browser: Chromium, base: str, password: str) -> None:
    """Through Airflow's login page, typing into its form as a user would."""
    browser.navigate(f"{base}/auth/login?next={urllib.parse.quote('/')}")
    wait_for(browser, "document.querySelector('input[name=password]')", "the login form")
    for name, text in (("username", USER), ("password", password)):
        browser.evaluate(f"document.querySelector('input[name={name}]').focus()")
        browser.send("Input.insertText", text=text)
    browser.evaluate("document.querySelector('form').requestSubmit()")
    wait_for(browser, "document.cookie.includes('_token') || !location.pathname.startsWith('/auth')", "the login")


def settle(browser: Chromium) -> None:
    """Two animation frames and the fonts: what was rendered is painted."""
    browser.evaluate(
        "document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))"
    )


def viewport(browser: Chromium, height: int) -> None:
    browser.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height, deviceScaleFactor=1, mobile=False)


def save(browser: Chromium, path: Path, clip: dict[str, float] | None = None) -> None:
    params: dict[str, object] = {"format": "png"}
    if clip:
        params["clip"] = {**clip, "scale": 1}
    path.write_bytes(base64.b64decode(browser.send("Page.captureScreenshot", **params)["data"]))
    print(f"wrote {path.name}", flush=True)


def shoot_view(browser: Chromium, base: str, path: Path) -> None:
    """The DAC7 view's page of the year, in Airflow's frame: the filings in the ledger."""
    browser.navigate(f"{base}/plugin/dac7/dac7/{YEAR}/")
    wait_for(browser, f"{FRAME}?.querySelector('#ledger') && {FRAME}.querySelector('table[id^=ledger-]')", "the view")
    settle(browser)
    save(browser, path)


def shoot_trigger_form(browser: Chromium, base: str, path: Path) -> None:
    """The DAG's page, its Trigger button clicked: the dialog with the Params form ("Run
    Parameters", open by default; "Advanced Options", the run id and the conf JSON, stay closed).

    The dialog is taller than 900 pixels: the viewport grows to hold all of it, and the
    screenshot is clipped to the dialog with a margin of the (now plain) backdrop."""
    browser.navigate(f"{base}/dags/{DAG_ID}")
    wait_for(browser, "document.querySelector('[data-testid=trigger-dag-button]:not([disabled])')", "the button")
    browser.evaluate("document.querySelector('[data-testid=trigger-dag-button]').click()")
    # the last field's help text, and a select that shows its value: the form has rendered
    wait_for(
        browser,
        f"{DIALOG}?.innerText.includes('Empty: every operator.') && {DIALOG}.innerText.includes('(the configuration')",
        "the trigger form",
    )
    browser.evaluate("document.activeElement?.blur()")  # no focus ring on the dialog's close button
    # an opaque backdrop: the margin around the dialog is a plain frame, not bits of the page
    browser.evaluate(
        "document.head.appendChild(Object.assign(document.createElement('style'), {textContent: "
        "'[data-scope=dialog][data-part=backdrop]{background:#9aa5b1 !important;backdrop-filter:none !important}'}))"
    )
    # grow the viewport until the whole dialog fits (it may move as the viewport grows)
    for _ in range(5):
        bottom = browser.evaluate(f"Math.ceil({DIALOG}.getBoundingClientRect().bottom + {MARGIN})")
        if bottom <= browser.evaluate("innerHeight"):
            break
        viewport(browser, bottom + 100)
        settle(browser)
    settle(browser)
    box = browser.evaluate(f"(r => [r.left, r.top, r.width, r.height])({DIALOG}.getBoundingClientRect())")
    left, top = max(box[0] - MARGIN, 0), max(box[1] - MARGIN, 0)
    save(browser, path, {"x": left, "y": top, "width": box[2] + 2 * MARGIN, "height": box[3] + 2 * MARGIN})
    viewport(browser, HEIGHT)


if __name__ == "__main__":
    sys.exit(main())
