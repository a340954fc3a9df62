"""Publish and finalize: the validated files leave staging, then the reports and the manifest.

Nothing is published unless every planned authority's files validated
(:mod:`reporting.stages.validate`). Publishing copies each file to a temporary name in the
output directory and renames it, then writes ``manifest.json`` the same way; files are readable
by their owner only.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any, cast, overload

from reporting import cyclic_gc
from reporting.checks.data import DOCS_DIR
from reporting.checks.data import STAGES as DATA_CHECK_STAGES
from reporting.errors import XmlValidationError
from reporting.faults import fault_point
from reporting.files import file_sha256
from reporting.ledger import Ledger, LedgerError, LedgerLockedError, open_ledger
from reporting.private import private_copy, private_copy_sha256, private_dirs
from reporting.reports.due_diligence import VIEW_LINK, write_due_diligence
from reporting.reports.sellers import write_reports
from reporting.reports.summary import SUMMARY_PAGE, write_run_summary
from reporting.results import (
    AuthorityPublished,
    DataChecks,
    DataCheckStage,
    DiscardedMessage,
    DueDiligence,
    ExtractResult,
    FileValidation,
    LedgerFile,
    Manifest,
    PublishedFile,
    RenderedMessage,
    RulesResult,
    SellerReports,
    SetAsideFile,
)
from reporting.settings import RunSettings, read_json, write_json
from reporting.stages.plan import ledger_url, planned_authorities, planned_other_live_filings, stage_ledger
from reporting.stages.render import rendered
from reporting.stages.validate import validation_path
from reporting.vocabulary import PROD

log = logging.getLogger(__name__)


def _publish_one(
    settings: RunSettings,
    ledger: Ledger,
    out: Path,
    msg: RenderedMessage,
    *,
    triggered_by: str | None = None,
    approved_by: str | None = None,
) -> tuple[Path, str]:
    """Copy one validated file to a temporary name in the output, then rename it into place in
    the ledger transaction that marks its message published: both happen, or neither. A retried
    publish of the same run finds its message published with the same file and goes on.
    Returns the published file and its sha256 (the rendered file's: the copy is checked against
    it as it is made, so the published file is never read again)."""
    src = settings.run_path / "render" / msg["file"]
    dst = out / msg["file"]
    changed = f"{msg['file']} changed after it was rendered and validated; nothing was published"
    info = ledger.message(msg["message_ref_id"])
    if info.status in (*PUBLISHED_STATUSES, "discarded") and file_sha256(src) != msg["sha256"]:
        raise XmlValidationError(changed)
    if info.status in PUBLISHED_STATUSES:
        if dst.is_file() and file_sha256(dst) == msg["sha256"]:
            log.info("message %s was published already (a retried publish)", msg["message_ref_id"])
            return dst, msg["sha256"]
        raise LedgerError(f"message {msg['message_ref_id']} is {info.status} in the ledger, but {dst} is not its file")
    if info.status == "discarded":
        raise LedgerError(
            f"message {msg['message_ref_id']} was discarded (a later run planned the period again); "
            "this run cannot publish it: run again"
        )
    private_dirs(dst.parent)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)  # left by a crash: made again, 0600 from its first byte
    try:
        # the rendered file read once: copied and hashed together, the copy published only if
        # its bytes are those the render recorded and the validation checked
        if private_copy_sha256(src, tmp) != msg["sha256"]:
            raise XmlValidationError(changed)
        with ledger.publishing(msg["message_ref_id"], triggered_by=triggered_by, approved_by=approved_by):
            os.replace(tmp, dst)
            fault_point("publish.after_rename")
    finally:
        tmp.unlink(missing_ok=True)
    fault_point("publish.after_commit")
    return dst, msg["sha256"]


#: where files moved aside by :func:`sweep` go, inside the output directory: never uploaded
SET_ASIDE = "set-aside"
PUBLISHED_STATUSES = ("published", "accepted", "rejected")


def sweep(settings: RunSettings, ledger: Ledger, out: Path, authority: str) -> list[SetAsideFile]:
    """Make ``<out>/<authority>/`` hold exactly the files the ledger says are published.

    A run killed after a file was renamed into place but before its ledger transaction committed
    leaves a file whose message is not published (a later run discards it and files its
    sellers again): uploading the folder would send both. Every such file (its message
    discarded, or rendered by another run) is moved to ``<out>/set-aside/<authority>/``, and a
    temporary copy left by a crash is deleted. Called under the ledger lock of the authority and
    period, so that no other run is publishing; this run's own messages are left alone (a
    retried publish puts them in place). Files the ledger does not know are left as they are."""
    folder = out / authority
    moved: list[SetAsideFile] = []
    if not folder.is_dir():
        return moved
    # only the period the lock covers: an output folder shared by several years may hold another
    # year's message being published right now, under its own lock
    by_file = {
        m.file_name: m
        for m in ledger.messages(
            year=settings.year, authority=authority, environment=settings.environment, operator_id=settings.operator_id
        )
        if m.file_name.startswith(f"{authority}/")
    }
    for name, filed in by_file.items():
        if filed.run_id != settings.run_id:  # a temporary copy of a crashed run of the period
            (out / name).with_name(f".{Path(name).name}.tmp").unlink(missing_ok=True)
    for path in sorted(folder.glob("*.xml")):
        m = by_file.get(f"{authority}/{path.name}")
        if m is None or m.status in PUBLISHED_STATUSES or (m.status == "rendered" and m.run_id == settings.run_id):
            continue
        target = private_dirs(out / SET_ASIDE / authority) / path.name
        os.replace(path, target)
        moved.append({"file": f"{authority}/{path.name}", "message_ref_id": m.message_ref_id, "status": m.status})
        log.warning(
            "%s/%s: its message %s is %s in the ledger, not published; moved to %s/%s so that it is never uploaded",
            authority,
            path.name,
            m.message_ref_id,
            m.status,
            SET_ASIDE,
            authority,
        )
    return moved


def published_files(settings: RunSettings, out: Path) -> list[LedgerFile]:
    """Every file of the period the ledger says is published (or answered), of every authority
    of the environment, whether this run published it or an earlier one, and whether it is in
    the output directory: what the manifest and the view list, whatever crashed before."""
    if settings.preview:
        return []
    with open_ledger(ledger_url(settings)) as ledger:
        messages = ledger.messages(
            year=settings.year, environment=settings.environment, operator_id=settings.operator_id
        )
    return [
        {
            "authority": m.authority,
            "file": m.file_name,
            "message_ref_id": m.message_ref_id,
            "message_type_indic": m.message_type_indic,
            "status": m.status,
            "published_utc": m.published.isoformat() if m.published else None,
            "sha256": m.sha256,
            "in_output": (out / m.file_name).is_file(),
        }
        for m in messages
        if m.status in PUBLISHED_STATUSES
    ]


def _publish_data_checks(settings: RunSettings, out: Path) -> DataChecks:
    """The summaries of the run's data checks, and their Data Docs copied to
    ``<out>/reports/data-docs/<stage>/`` (replacing those of an earlier run)."""
    stages: dict[str, DataCheckStage] = {}
    for stage in DATA_CHECK_STAGES:
        path = settings.run_path / "checks" / f"{stage}.json"
        if path.is_file():
            stages[stage] = read_json(path)
    docs = settings.run_path / DOCS_DIR
    target = out / "reports" / DOCS_DIR
    if docs.is_dir():
        tmp = out / "reports" / f".{DOCS_DIR}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(docs, tmp)
        for p in [tmp, *tmp.rglob("*")]:
            os.chmod(p, 0o700 if p.is_dir() else 0o600)
        offline_docs(tmp)
        old = out / "reports" / f".{DOCS_DIR}.old"
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    elif target.exists():
        shutil.rmtree(target)  # an earlier run's docs would not describe this run
    for summary in stages.values():
        if summary.get("data_docs"):
            summary["data_docs"] = f"reports/{summary['data_docs']}"
    return {
        "expectations": sum(s["expectations"] for s in stages.values()),
        "failed": sum(len(s["failed"]) for s in stages.values()),
        "seconds": round(sum(s["seconds"] for s in stages.values()), 3),
        "stages": stages,
    }


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE)
_REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE)


def offline_docs(folder: Path) -> None:
    """Great Expectations' Data Docs without anything loaded from elsewhere: its pages load nine
    scripts from five CDNs (seven without an integrity hash), remote style sheets and a remote
    logo, which would run in Airflow's origin when the DAC7 view serves them, and break offline.
    Every script (remote or inline: the view's Content-Security-Policy allows none), every remote
    style sheet and image is dropped; the pages keep their tables and their local styles."""
    for page in folder.rglob("*.htm*"):
        text = page.read_text(encoding="utf-8")
        cleaned = _REMOTE_IMG.sub("", _REMOTE_LINK.sub("", _SCRIPT.sub("", text)))
        if cleaned != text:
            page.write_text(cleaned, encoding="utf-8")


def published_path(run_path: Path, authority: str) -> Path:
    """What the run published to the authority, ``publish/authorities/<XX>.json`` in its staging."""
    return run_path / "publish" / "authorities" / f"{authority}.json"


@overload
def publish(
    settings: RunSettings,
    authority: None = None,
    *,
    triggered_by: str | None = None,
    approved_by: str | None = None,
    require_approval: bool = False,
) -> Manifest: ...
@overload
def publish(
    settings: RunSettings,
    authority: str,
    *,
    triggered_by: str | None = None,
    approved_by: str | None = None,
    require_approval: bool = False,
) -> AuthorityPublished: ...


def publish(
    settings: RunSettings,
    authority: str | None = None,
    *,
    triggered_by: str | None = None,
    approved_by: str | None = None,
    require_approval: bool = False,
) -> AuthorityPublished | Manifest:
    """Move the validated files of one authority (or of all, then :func:`finalize`) to
    ``<out>/<authority>/``. Nothing is published unless every planned authority's files
    validated: one error in one file means nothing is published. With ``require_approval`` (the
    DAG's publish), a production filing is published only if the ledger holds a second person's
    approval of each of its messages (:func:`record_approval`), whatever happened in the UI."""
    authorities = planned_authorities(settings)
    invalid = [
        a
        for a in authorities
        if not (p := validation_path(settings.run_path, a)).is_file() or not read_json(p)["valid"]
    ]
    if invalid:
        raise XmlValidationError(
            f"the run's files did not validate (or were not validated) for {', '.join(invalid)}; nothing was published"
        )
    if authority is None:
        for a in authorities:
            publish(settings, a, triggered_by=triggered_by, approved_by=approved_by, require_approval=require_approval)
            fault_point("publish.between_authorities")
        return finalize(settings)
    render = rendered(settings, authority)
    out = private_dirs(settings.out_dir)
    # Earlier filings stay where they were published: every file is a message the authority
    # received (or will), named by its unique MessageRefId; the ledger says what each one did.
    files: list[PublishedFile] = []
    with (
        stage_ledger(settings, authority) as url,
        open_ledger(url) as ledger,
        ledger.lock(
            settings.environment, authority, settings.year, holder=settings.run_id, operator_id=settings.operator_id
        ),
    ):
        if require_approval and settings.environment == PROD and not settings.preview:
            for msg in render["messages"]:
                info = ledger.message(msg["message_ref_id"])
                if info.status == "rendered":  # a retry finds some published already
                    approver = ledger.check_approved(info).approved_by  # raises without a recorded approval
                    approved_by = approved_by or approver
        set_aside = [] if settings.preview else sweep(settings, ledger, out, authority)
        # in the order planned (a correction of the PlatformOperator before the additions), each
        # file moved into place inside the transaction that records it as published
        for msg in render["messages"]:
            dst, sha256 = _publish_one(settings, ledger, out, msg, triggered_by=triggered_by, approved_by=approved_by)
            files.append(
                {
                    "authority": msg["authority"],
                    "profile": msg["profile"],
                    "file": msg["file"],
                    "message_ref_id": msg["message_ref_id"],
                    "message_type_indic": msg["message_type_indic"],
                    "sellers": msg["sellers"],
                    "records": msg["records"],
                    "platform_operator": msg["platform_operator"],
                    "part": msg["part"],
                    "parts": msg["parts"],
                    "bytes": dst.stat().st_size,
                    "sha256": sha256,
                }
            )
    summary: AuthorityPublished = {"authority": authority, "files": files, "set_aside": set_aside}
    write_json(settings.stage_dir("publish/authorities") / f"{authority}.json", summary)
    log.info("publish year=%s authority=%s: %d file(s)", settings.year, authority, len(files))
    return summary


def finalize(settings: RunSettings) -> Manifest:
    """After every authority is published: the explanation reports, the due-diligence report,
    the Data Docs and ``<out>/manifest.json`` with the files of every authority."""
    authorities = planned_authorities(settings)
    missing = [a for a in authorities if not published_path(settings.run_path, a).is_file()]
    if missing:
        raise XmlValidationError(f"not published yet for {', '.join(missing)}: the manifest waits for every authority")
    published: list[AuthorityPublished] = [read_json(published_path(settings.run_path, a)) for a in authorities]
    files: list[PublishedFile] = [f for p in published for f in p["files"]]
    validation: list[FileValidation] = [
        f for a in authorities for f in read_json(validation_path(settings.run_path, a))["files"]
    ]
    set_aside: list[SetAsideFile] = [f for p in published for f in p.get("set_aside", [])]
    set_aside += _sweep_all(settings, exclude=set(authorities))
    manifest = _write_manifest(
        settings,
        files=files,
        set_aside=set_aside,
        warnings=[
            {"file": r["file"], **f}
            for r in validation
            for f in r.get("rule_findings", [])
            if f.get("severity") == "warning"
        ],
        discarded=rendered(settings).get("discarded", []),
        # live filings of the period to other authorities than the filing state (filed before):
        # this run left them as they are
        other_live_filings=planned_other_live_filings(settings),
    )
    log.info("publish year=%s: %d file(s) to %s", settings.year, len(files), settings.out_dir)
    return manifest


def record_approval(settings: RunSettings, *, approved_by: str, triggered_by: str | None) -> list[str]:
    """Record in the ledger that ``approved_by`` approved every message this run rendered for a
    production filing; returns their MessageRefIds. A preview or a test run records nothing."""
    if settings.preview or settings.environment != PROD:
        return []
    ids = [m["message_ref_id"] for a in planned_authorities(settings) for m in rendered(settings, a)["messages"]]
    if ids:
        with open_ledger(ledger_url(settings)) as ledger:
            ledger.record_approval(ids, approved_by=approved_by, triggered_by=triggered_by)
    log.info("approval of %d message(s) by %s recorded in the ledger", len(ids), approved_by)
    return ids


def _sweep_all(settings: RunSettings, exclude: set[str]) -> list[SetAsideFile]:
    """:func:`sweep` of every authority folder in the output that this run did not publish to
    (a rerun with nothing to file, or a folder of an earlier routing), each under its lock."""
    out = Path(settings.out_dir)
    if settings.preview or not out.is_dir():
        return []
    folders = sorted(p.name for p in out.iterdir() if p.is_dir() and len(p.name) == 2 and p.name.isupper())
    moved: list[SetAsideFile] = []
    for authority in (a for a in folders if a not in exclude):
        with open_ledger(ledger_url(settings)) as ledger:
            try:
                with ledger.lock(
                    settings.environment,
                    authority,
                    settings.year,
                    holder=settings.run_id,
                    operator_id=settings.operator_id,
                ):
                    moved += sweep(settings, ledger, out, authority)
            except LedgerLockedError as exc:  # another run files there: its own publish sweeps
                log.warning("%s/ not checked for files to set aside: %s", authority, exc)
    return moved


def report(settings: RunSettings) -> Manifest:
    """The reports of a run that renders nothing (the quarterly watch): the explanation reports,
    the due-diligence report, the Data Docs, the run summary and ``<out>/manifest.json`` without
    files, straight after the rules stage."""
    manifest = _write_manifest(
        settings, files=[], set_aside=[], warnings=[], discarded=[], other_live_filings=[], watch=True
    )
    log.info("report year=%s: the reports of the watch (no XML) in %s", settings.year, settings.out_dir)
    return manifest


#: From this many sellers, the seller reports (:func:`write_reports`: DuckDB's work, which leaves
#: the interpreter free while its queries run) are written in a thread beside the due-diligence
#: report (the identifier checks: Python's work), the two on both cores. A thread costs nothing to
#: start (a worker process would cost about 0.6 CPU s of imports); the smallest marketplace
#: measured, 4,993 sellers, gained 0.06 to 0.2 s of 0.45 to 0.5 without more CPU seconds. Below
#: it the reports take a few tenths of a second, written one after the other (docs/performance.md,
#: "The publish stage's two reports side by side").
PARALLEL_REPORTS_MIN_SELLERS = 4_000


def write_seller_reports(settings: RunSettings, out: Path, *, sellers: int) -> tuple[SellerReports, DueDiligence]:
    """The explanation reports and the due-diligence report of a run of ``sellers`` sellers: side
    by side from :data:`PARALLEL_REPORTS_MIN_SELLERS` sellers, else one after the other; the same
    files either way. A report that failed raises here its own exception (the explanation
    reports' first, as one after the other would), once both have ended; a KeyboardInterrupt or
    SystemExit of the caller stays that, raised once the thread has ended."""
    # the collector paused for both (it is process-wide): none of their objects is in a cycle
    with cyclic_gc.paused():
        if sellers < PARALLEL_REPORTS_MIN_SELLERS:
            return write_reports(settings, out), write_due_diligence(settings, out)
        outcome: list[SellerReports] = []
        failed: list[BaseException] = []

        def explanation_reports() -> None:
            try:
                outcome.append(write_reports(settings, out))
            except BaseException as exc:  # raised again in the caller, in its turn
                failed.append(exc)

        # in a copy of the caller's context: its log lines name the stage as the caller's do
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(explanation_reports,), name="dac7-seller-reports")
        thread.start()
        try:
            diligence = write_due_diligence(settings, out)
        except Exception:
            thread.join()
            if failed:  # the explanation reports' error first, this one its context
                raise failed[0]  # noqa: B904 (the error as one after the other raises it)
            raise
        except BaseException:
            thread.join()  # an interrupt or an exit stays that, once the thread has ended
            raise
        thread.join()
        if failed:
            raise failed[0]
        return outcome[0], diligence


def _write_manifest(
    settings: RunSettings,
    *,
    files: list[PublishedFile],
    set_aside: list[SetAsideFile],
    warnings: list[dict[str, Any]],
    discarded: list[DiscardedMessage],
    other_live_filings: list[str],
    watch: bool = False,
) -> Manifest:
    """The reports, the Data Docs, the run summary and ``manifest.json``, written to the output."""
    out = private_dirs(settings.out_dir)
    keep_earlier_run(out, settings.run_id)  # before this run's reports replace that run's
    published = [] if watch else published_files(settings, out)
    rules: RulesResult = read_json(settings.run_path / "rules" / "rules.json")
    reports, diligence = write_seller_reports(settings, out, sellers=rules["sellers"])
    checks = _publish_data_checks(settings, out)
    extract: ExtractResult = read_json(settings.run_path / "extract" / "extract.json")
    manifest: Manifest = {
        "run_id": settings.run_id,
        "reporting_year": settings.year,
        "as_of": settings.as_of.isoformat(),
        "environment": settings.environment,
        "routing": settings.config.reporting.routing,
        # the member state filed in, whose law decided every seller; a preview is never a filing
        "filing_state": settings.filing_state,
        "preview": settings.preview,
        "reading": rules.get("reading"),
        "partner_jurisdictions": rules.get("partner_jurisdictions"),
        "timestamp_utc": settings.timestamp.isoformat(),
        # the quarterly watch renders no XML: its manifest holds the reports only
        "watch": watch,
        "files": files,
        # every file of the period the ledger says is published, by this run or an earlier one
        # (a crashed run's included), and the files moved aside because they are not
        "published_files": published,
        "set_aside": set_aside,
        "reports": [*reports["reports"], "reports/due_diligence.csv", "reports/due_diligence.html", SUMMARY_PAGE],
        "due_diligence": diligence,
        "warnings": warnings,
        "data_checks": checks,
        "superseded": [],  # kept for readers of older manifests: files are never moved now
        "discarded": discarded,
        "other_live_filings": other_live_filings,
        # another operator reports this operator's sellers: its files carry none (the declaration)
        "assumed_reporting": settings.config.operator.assuming_operator is not None,
        "staging": settings.run_dir,
        "summary": {
            "sellers_read": extract["counts"]["sellers"],
            "transactions_read": extract["counts"]["transactions"],
            "reportable": rules["reportable"],
            "decisions": rules["decisions"],
            "sellers_per_authority": rules["sellers_per_authority"],
        },
    }
    manifest["run_copy"] = f"{RUNS}/{run_key(settings.run_id)}"
    if settings.operator_ids:  # a group: whose filing this is (each operator's in its own folder)
        manifest["operator_id"] = settings.operator_id
        manifest["operator_name"] = settings.config.operator.name
    write_run_summary(settings, out, manifest)  # the figures and charts for people, from the manifest
    fault_point("finalize.before_manifest")
    keep_run_copy(out, manifest)
    write_json(out / "manifest.json", manifest)
    return manifest


#: where each run's own manifest and reports stay, inside the year's output: ``runs/<run>/``
RUNS = "runs"
#: the reports of a run kept with its manifest (the others are the latest run's only)
RUN_REPORTS = ("run_summary.html", "due_diligence.html", "due_diligence.csv", "quarantine.csv")
#: the reports of a run that the view's seller page reads, kept with its manifest too: hard links
#: when the file system allows (a later run replaces the files under ``reports/``, it never
#: writes into them), else copies
SELLER_REPORTS = ("decisions.parquet", "figures.parquet")
#: what the kept copy of ``due_diligence.html`` says of its Data Docs links
KEPT_DOCS_NOTE = (
    "Data checks (Great Expectations Data Docs; this is a kept copy of a run's report: the links open the "
    "Data Docs of the year's latest run, which may be a later run than this one):"
)


def run_key(run_id: str) -> str:
    """The folder name of a run under ``runs/``: its id with every character other than a
    letter, digit, ``.``, ``_`` or ``-`` replaced by ``_`` (an Airflow run id holds ``:`` and ``+``)."""
    key = re.sub(r"[^A-Za-z0-9._-]", "_", run_id).lstrip(".")
    return key or "_"


def keep_run_copy(out: Path, manifest: Manifest) -> Path:
    """Copy a run's manifest and its reports for people to ``<out>/runs/<run>/`` (owner-only), so
    that a later run, of either environment, never hides them: ``manifest.json`` at the top of
    the output stays the latest run's, whatever its environment."""
    folder = private_dirs(out / manifest["run_copy"])
    reports = private_dirs(folder / "reports")
    for name in (*RUN_REPORTS, *SELLER_REPORTS):
        src = out / "reports" / name
        if not src.is_file():
            continue
        tmp = reports / f".{name}.tmp"
        tmp.unlink(missing_ok=True)
        if name == "due_diligence.html":  # two folders deeper: its links back to the view and to the Data Docs
            text = (
                src.read_text(encoding="utf-8")
                .replace(f'href="{VIEW_LINK}"', f'href="../../{VIEW_LINK}"')
                .replace(f'href="{DOCS_DIR}/', f'href="../../../reports/{DOCS_DIR}/')
                .replace("<p>Data checks (Great Expectations Data Docs):</p>", f"<p>{KEPT_DOCS_NOTE}</p>")
            )
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        elif name in SELLER_REPORTS:
            _link_or_copy(src, tmp)
        else:
            private_copy(src, tmp)
        os.replace(tmp, reports / name)
    write_json(folder / "manifest.json", manifest)
    return folder


def keep_earlier_run(out: Path, run_id: str) -> Path | None:
    """Keep the run of ``<out>/manifest.json`` under ``runs/<run>/`` when it was published before
    runs were kept there (its manifest has no ``run_copy``), with those of its reports that are
    still under ``reports/``: the run about to publish would otherwise replace the only trace of
    it, and a test run would hide the year's production run. Nothing is done for a manifest
    of ``run_id`` itself (a retry), nor when that run's copy exists already."""
    try:
        earlier = read_json(out / "manifest.json")
    except (OSError, ValueError):  # none yet, or unreadable: nothing to keep
        return None
    if not isinstance(earlier, dict) or str(earlier.get("run_id", "")) == run_id:
        return None
    if "run_copy" in earlier:
        _keep_seller_reports(out, str(earlier["run_copy"]))
        return None
    key = run_key(str(earlier.get("run_id", "")))
    if (out / RUNS / key / "manifest.json").is_file():
        return None
    log.info("keeping the run %s, published before runs were kept, under %s/%s", earlier.get("run_id"), RUNS, key)
    # an earlier run's manifest, read back as its run wrote it
    return keep_run_copy(out, cast(Manifest, {**earlier, "run_copy": f"{RUNS}/{key}"}))


def _keep_seller_reports(out: Path, run_copy: str) -> None:
    """Add the seller reports to an earlier run's copy kept without them (by a version that kept
    the manifest and the other reports only), while ``reports/`` still holds that run's: the
    seller page reads them there once a later run replaces ``reports/``."""
    folder = out / run_copy
    if not run_copy.startswith(f"{RUNS}/") or ".." in run_copy.split("/") or not (folder / "manifest.json").is_file():
        return
    for name in SELLER_REPORTS:
        src, dst = out / "reports" / name, folder / "reports" / name
        if src.is_file() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = dst.with_name(f".{name}.tmp")
            tmp.unlink(missing_ok=True)
            _link_or_copy(src, tmp)
            os.replace(tmp, dst)


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src`` (owner-only, as ``src`` is), else as an owner-only copy."""
    try:
        os.link(src, dst)
    except OSError:
        private_copy(src, dst)
    else:
        os.chmod(dst, 0o600)
