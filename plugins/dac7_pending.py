"""The pending files of a run that waits for approval: what the approver opens before approving.

A production filing is rendered and validated into the run's staging directory
(``$DAC7_STAGING_DIR/<year>-<run uuid>/``) and published only after a second person approves
it. The approval request (``dags/dac7_support/approval.py``) links here:

- ``<prefix>/pending/<run>/``: the run's messages (authority, MessageRefId, what is sent, sha256),
  a link to each file for a user with the download permission, and the answers refused so far
  (an approval by the person who triggered the run);
- ``<prefix>/pending/<run>/<authority>/<file>``: one rendered file, only if the run's render
  lists it (``render/authorities/<XX>.json``), only with the download permission (the XML holds
  personal data), only while its bytes are those rendered (their sha256); each download is
  logged with the user and the sha256.

The api-server reads the staging root of ``DAC7_STAGING_DIR``, as the tasks do: one machine or a
shared mount (with ``DAC7_STAGING_URL``, shared object storage, the files are not served here).

Airflow imports every module of the plugins folder in every process: the top level imports the
standard library only; FastAPI and ``dac7_view`` are imported inside :func:`add_routes`, which
``dac7_plugin.create_app`` calls in the api-server. No ``from __future__ import annotations``:
FastAPI reads the annotations of the routes defined in :func:`add_routes`.
"""

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: A run's staging directory name: ``<year>-<run uuid>`` (``reporting.pipeline.prepare``).
RUN_NAME = re.compile(r"^20[0-9]{2}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
log = logging.getLogger("dac7.view")


def staging_root(env: Mapping[str, str] | None = None) -> Path | None:
    """The staging root the tasks write to (``DAC7_STAGING_DIR``), or None when unset."""
    value = (os.environ if env is None else env).get("DAC7_STAGING_DIR")
    return Path(value) if value else None


def run_dir(root: Path, run: str) -> Path | None:
    """The staging directory of run ``run`` (a ``<year>-<uuid>`` name), if it exists."""
    if not RUN_NAME.match(run):
        return None
    path = root / run
    return path if path.is_dir() and path.resolve().is_relative_to(root.resolve()) else None


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def pending_messages(run: Path) -> list[dict[str, Any]]:
    """The messages the run rendered, per planned authority in order, as its render listed them
    (``authority``, ``message_ref_id``, ``message_type_indic``, ``file``, ``records``, ``sha256``),
    each with ``published``: whether the run has published that authority already
    (``reporting.pipeline.pending_messages``)."""
    from reporting import pipeline

    return [dict(m) for m in pipeline.pending_messages(run)]


def pending_file(run: Path, relative: str) -> tuple[Path, str] | None:
    """The rendered file at ``relative`` (``<XX>/<name>``, below ``<run>/render/``) and the sha256
    its render recorded, if the run's render lists it; None for anything else, for a path with
    an empty, ``.`` or ``..`` segment, and for one that leaves the run's render directory."""
    from reporting import pipeline

    segments = relative.split("/")
    if any(s in ("", ".", "..") for s in segments) or "\\" in relative or "\x00" in relative:
        return None
    listed = {m["file"]: str(m.get("sha256", "")) for m in pending_messages(run)}
    if relative not in listed:
        return None
    path = pipeline.rendered_file(run, relative)
    root = path.parents[len(segments) - 1].resolve()  # the run's render directory, above <XX>/<name>
    target = path.resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target, listed[relative]


def refusals(run: Path) -> list[dict[str, str]]:
    """The answers the approval step refused (``approval/refused.jsonl``), oldest first."""
    path = run / "approval" / "refused.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sent(records: Mapping[str, int]) -> str:
    labels = (("new", "new"), ("correction", "corrected"), ("deletion", "deleted"), ("resend", "resent"))
    return ", ".join(f"{records[k]} {label}" for k, label in labels if records.get(k)) or "no seller record"


def pending_page(run: Path, *, may_download: bool) -> str:
    """The page of a run's pending files (relative links: ``<prefix>/pending/<run>/<file>``)."""
    import dac7_view as view

    messages = pending_messages(run)
    request = _read(run / "approval" / "request.json") if (run / "approval" / "request.json").is_file() else {}
    body = [
        f"<h1>DAC7 {escape(str(request.get('year', run.name[:4])))}: files waiting for approval</h1>",
        f'<p><a href="../../">DAC7 filings</a> · run <span class="id">{escape(run.name)}</span>'
        + (
            f" · {escape(str(request.get('environment')))} · triggered by "
            f"{escape(str(request.get('triggered_by') or 'the schedule'))}"
            if request
            else ""
        )
        + "</p>",
    ]
    asked = request.get("assigned_users") or []
    if request:
        body.append(
            "<p>Asked to approve: "
            + (
                escape(", ".join(str(u.get("name")) for u in asked))
                if asked
                else "anyone Airflow lets answer, except the person who triggered the run"
            )
            + ".</p>"
        )
    body += _due_diligence(request.get("due_diligence") or {})
    if not messages:
        body.append("<p>This run has rendered no file.</p>")
    else:
        rows = []
        for m in messages:
            name = str(m["file"]).rsplit("/", 1)[-1]
            link = (
                f'<a class="download pending" href="{escape(quote(str(m["file"])))}" title="{escape(name)}" download>'
                f"{escape(name)}</a>"
                if may_download
                else view.NO_DOWNLOAD
            )
            rows.append(
                (
                    escape(str(m["authority"])),
                    view._id(m.get("message_ref_id")),
                    view._message_type(m.get("message_type_indic")),
                    escape(_sent(m.get("records", {}))),
                    link,
                    # the whole digest, to compare; broken anywhere so that the table fits a screen
                    f'<span class="id sha256" style="word-break: break-all">{escape(str(m.get("sha256", "")))}</span>',
                    "published" if m["published"] else "waiting",
                )
            )
        body.append(
            view._table(
                ["Authority", "MessageRefId", "Type", "What is sent", "File", "sha256", "State"],
                rows,
                table_id="pending-files",
            )
        )
    refused = refusals(run)
    if refused:
        body.append("<h2>Refused answers</h2>")
        body.append(
            view._table(
                ["When (UTC)", "By", "Answer", "Why"],
                [tuple(escape(str(r.get(k, ""))) for k in ("at", "user", "answer", "reason")) for r in refused],
                table_id="refused",
            )
        )
    return view._page(f"DAC7 pending files {run.name}", body)


def _due_diligence(per_filing: Mapping[str, Any]) -> list[str]:
    """Per filing, how many of its reportable sellers the due-diligence state still finds
    incomplete, as the approval request counted them (``request.json``: when the run asked)."""
    import dac7_view as view

    if not per_filing:
        return []
    rows = [
        (
            escape(label),
            view._num(d.get("reportable")),
            view._num(d.get("incomplete")) if d.get("as_of") else '<span class="muted">not known</span>',
            escape(str(d.get("as_of") or "no daily due-diligence run recorded")),
        )
        for label, d in per_filing.items()
        if isinstance(d, dict)
    ]
    return [
        '<h2 id="due-diligence">Due diligence of the sellers filed</h2>',
        '<p class="muted">Of the reportable sellers of each filing, those the due-diligence state still finds '
        "incomplete (an item missing or invalid: reported with what is known, e.g. a TIN as unknown), as of the "
        "latest daily due-diligence run when the approval was asked for. Which sellers: the DAC7 view's "
        '<a href="../../attention">needs attention</a> list.</p>',
        view._table(
            ["Filing", "Reportable sellers", "Still incomplete", "State as of"],
            rows,
            table_id="due-diligence-incomplete",
            numeric=(1, 2),
        ),
    ]


def add_routes(app: Any, view_user: Any, may_download: Callable[[Any], bool], refused_detail: str) -> None:
    """The pending routes on the view's app (``dac7_plugin.create_app``): ``view_user`` is its
    dependency that yields the logged-in user allowed to read the view."""
    from fastapi import HTTPException, status
    from fastapi.responses import FileResponse, HTMLResponse

    def run_of(run: str) -> Path:
        root = staging_root()
        if root is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                "No staging directory is configured: set DAC7_STAGING_DIR in the api-server's environment.",
            )
        found = run_dir(root, run)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such run in the staging directory.")
        return found

    @app.get("/pending/{run}/", response_class=HTMLResponse)
    def pending_index(run: str, user: view_user) -> HTMLResponse:  # type: ignore[valid-type]
        return HTMLResponse(pending_page(run_of(run), may_download=may_download(user)))

    @app.get("/pending/{run}/{path:path}")
    def pending_download(run: str, path: str, user: view_user) -> FileResponse:  # type: ignore[valid-type]
        if not may_download(user):
            log.warning("DAC7 pending download refused: %s may not download %s/%s", user.get_name(), run, path[:99])
            raise HTTPException(status.HTTP_403_FORBIDDEN, refused_detail)
        found = pending_file(run_of(run), path)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such file among the run's rendered files.")
        target, listed = found
        from reporting.files import file_sha256

        digest = file_sha256(target)
        if listed and digest != listed:
            log.warning("DAC7 pending file changed since it was rendered: %s/%s sha256 %s", run, path, digest)
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "This file changed since the run rendered it (its sha256 differs): do not approve; rerun the filing.",
            )
        log.info("DAC7 pending download by %s: %s/%s sha256 %s", user.get_name(), run, path, digest)
        return FileResponse(
            target, media_type="application/xml", filename=target.name, content_disposition_type="attachment"
        )
