"""Validate and publish: nothing leaves staging unless every file of the run is schema-valid.

Publishing copies each file to a temporary name in the output directory and renames it, then
writes ``manifest.json`` the same way; files are readable by their owner only.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from reporting import safexml
from reporting.authorities import select_profile
from reporting.checks.business import EU_EXCHANGE, check_message
from reporting.checks.data import DOCS_DIR
from reporting.checks.data import STAGES as DATA_CHECK_STAGES
from reporting.checks.schema import load_schema, validate_file
from reporting.errors import ConfigError, XmlValidationError
from reporting.faults import fault_point
from reporting.ledger import Ledger, LedgerError, LedgerLockedError, open_ledger
from reporting.private import private_copy, private_dirs
from reporting.reports.due_diligence import VIEW_LINK, write_due_diligence
from reporting.reports.sellers import write_reports
from reporting.reports.summary import SUMMARY_PAGE, write_run_summary
from reporting.settings import RunSettings, read_json, remember_secret_url, secret_url, write_json
from reporting.stages.render import (
    file_sha256,
    ledger_url,
    planned_authorities,
    planned_other_live_filings,
    rendered,
    stage_ledger,
)
from reporting.workers import run_ordered, workers_for

log = logging.getLogger(__name__)


def validate(settings: RunSettings, authority: str | None = None, part: int | None = None) -> dict[str, Any]:
    """Check every rendered file (of one authority, or of all) against its profile's schema, then
    its business rules (the authority's error codes, with the ledger's); raise if any file has an
    error, so that nothing is published. Writes ``validate/authorities/<XX>.json`` per authority
    (``validate/validate.json`` for all).

    With ``part``, only the authority's ``part``-th file (0-based, in the order the render wrote
    them: initial, corrections, deletions, the parts of a split message) is checked, into
    ``validate/parts/<XX>/<part>.json``; :func:`combine_parts` then writes the authority's report.
    The files of one authority are checked in parallel that way (the Airflow DAG maps them).
    Without ``authority``, the authorities' files are checked in parallel here
    (:func:`_validate_all`)."""
    if part is not None:
        if authority is None:
            raise ConfigError("a part is validated for one authority: name it")
        result = _validate(settings, authority, only=part)
        if result["failures"]:
            raise XmlValidationError(
                f"rendered XML for {authority} (file {part + 1}) breaks the schema or the authority's business "
                "rules; nothing will be published:\n  " + "\n  ".join(result["failures"][:100])
            )
        return result
    if authority is None:
        parts = _validate_all(settings, planned_authorities(settings))
        summary = {"files": [f for p in parts for f in p["files"]], "valid": all(p["valid"] for p in parts)}
        write_json(settings.stage_dir("validate") / "validate.json", summary)
        failures = [f for p in parts for f in p["failures"]]
        if failures:
            raise XmlValidationError(
                "rendered XML breaks the schema or the authority's business rules; nothing was published:\n  "
                + "\n  ".join(failures[:100])
            )
        log.info("validate year=%s: %d file(s) valid", settings.year, len(summary["files"]))
        return summary
    result = _validate(settings, authority)
    if result["failures"]:
        raise XmlValidationError(
            f"rendered XML for {authority} breaks the schema or the authority's business rules; nothing was "
            "published:\n  " + "\n  ".join(result["failures"][:100])
        )
    return result


#: A worker process starts in about 0.6 s (its imports), the time to check some 5 MB of XML: one
#: is started for every this many bytes of the run's files, up to one per CPU.
BYTES_PER_WORKER = 8 << 20


def _validate_all(settings: RunSettings, authorities: list[str], *, workers: int | None = None) -> list[dict[str, Any]]:
    """:func:`_validate` of every authority, in order: their files are checked in parallel in
    worker processes (one per CPU and :data:`BYTES_PER_WORKER`, this process counting as one;
    ``workers`` when given), each report written and logged here in the order of
    ``authorities``, as one after the other would (the first authority whose check raised raises
    here, after the reports of those before it are written)."""
    if len(authorities) <= 1 or workers == 1:
        return [_validate(settings, a) for a in authorities]
    weights = [_rendered_bytes(settings, a) for a in authorities]
    if workers is None:
        workers = min(workers_for(len(authorities)), max(1, sum(weights) // BYTES_PER_WORKER))
    if workers <= 1:
        return [_validate(settings, a) for a in authorities]
    secret = secret_url(settings.run_id, "ledger")  # kept in memory: handed to the workers over their pipe
    jobs = [(settings, a, secret) for a in authorities]
    checked = run_ordered(_check_job, jobs, workers=workers, weights=weights)
    return [_write_validation(settings, a, summary, None) for a, summary in zip(authorities, checked, strict=True)]


def _rendered_bytes(settings: RunSettings, authority: str) -> int:
    """The size of an authority's rendered files (what is missing counts 0: its check says so)."""
    try:
        messages = rendered(settings, authority)["messages"]
    except Exception:  # raised again, in its turn, by the authority's check
        return 0
    paths = (settings.run_path / "render" / m["file"] for m in messages)
    return sum(p.stat().st_size for p in paths if p.is_file())


def _check_job(settings: RunSettings, authority: str, secret: str | None) -> dict[str, Any]:
    """A worker's job: :func:`_check` of one authority (a worker process has the umask of the
    stage that started it)."""
    if secret is not None:
        remember_secret_url(settings.run_id, "ledger", secret)
    return _check(settings, authority)


def _validate(settings: RunSettings, authority: str, only: int | None = None) -> dict[str, Any]:
    return _write_validation(settings, authority, _check(settings, authority, only), only)


def _check(settings: RunSettings, authority: str, only: int | None = None) -> dict[str, Any]:
    render = rendered(settings, authority)
    if only is not None and not 0 <= only < len(render["messages"]):
        raise ConfigError(f"{authority} has {len(render['messages'])} rendered file(s): there is no file {only + 1}")
    with stage_ledger(settings, authority, write=False) as url, open_ledger(url) as ledger:
        return _check_with(settings, authority, render, ledger, only)


def _check_with(
    settings: RunSettings, authority: str, render: dict[str, Any], ledger: Ledger, only: int | None
) -> dict[str, Any]:
    """The validation report of an authority's files (or of its ``only``-th), written nowhere."""
    results = []
    failures: list[str] = []
    earlier: set[str] = set()  # this run's messages before the current one (published first)
    for i, msg in enumerate(render["messages"]):
        if only is not None and i != only:
            earlier.add(msg["message_ref_id"])
            continue
        path = settings.run_path / "render" / msg["file"]
        profile = select_profile(msg["authority"], settings.config, warn=False)
        # The authority's current official schema package, where the configuration points at one.
        xsd_dir = settings.identifiers(msg["authority"]).get("xsd_dir") or settings.xsd_dir
        errors = validate_file(path, load_schema(str(profile.official_schema(xsd_dir))))
        findings = profile.extra_checks(path) if not errors else []
        if not errors and profile.rule_set.codes:
            # A preview shows what the filing state forwards to each state: the rules of the
            # exchange between authorities apply (each state receives only sellers resident
            # there or with property there, 40070, and the other exchange-only rules).
            rules = EU_EXCHANGE if settings.preview else profile.rule_set
            if settings.environment == "test" and settings.period.reporting_period > settings.timestamp.date():
                # A test preview of the running year: its period has not ended yet (10060).
                rules = rules.derive(f"{rules.name}, running year", exclude={"10060"} & rules.codes)
            known, states = _ledger_view(ledger, path, msg["message_ref_id"], earlier)
            findings += check_message(
                path,
                rules=rules,
                today=settings.timestamp.date(),
                receiving_country=msg["authority"],
                known_doc_ref_ids=known,
                ledger=states,
            )
        earlier.add(msg["message_ref_id"])
        results.append(
            {
                "file": msg["file"],
                "valid": not errors and not any(f.severity == "error" for f in findings),
                "schema_errors": [str(e) for e in errors[:20]],
                "rule_findings": [f.as_dict() for f in findings[:200]],
            }
        )
        failures.extend(f"{msg['file']}:{e.line}: {e.message}" for e in errors[:20])
        failures.extend(f"{msg['file']}: {f.describe()}" for f in findings if f.severity == "error")
    return {"authority": authority, "files": results, "valid": not failures, "failures": failures}


def _write_validation(
    settings: RunSettings, authority: str, summary: dict[str, Any], only: int | None
) -> dict[str, Any]:
    """Write and log the report :func:`_check_with` made."""
    results, failures = summary["files"], summary["failures"]
    if only is not None:
        write_json(settings.stage_dir(f"validate/parts/{authority}") / f"{only:04d}.json", summary | {"part": only})
        log.info(
            "validate year=%s authority=%s file %d: %d failure(s)", settings.year, authority, only + 1, len(failures)
        )
        return summary
    write_json(settings.stage_dir("validate/authorities") / f"{authority}.json", summary)
    log.info(
        "validate year=%s authority=%s: %d file(s), %d failure(s)",
        settings.year,
        authority,
        len(results),
        len(failures),
    )
    return summary


def file_ledger_view(ledger: Ledger, path: Path) -> tuple[set[str], dict[str, str]]:
    """:func:`_ledger_view` of a file that is not (or not yet) in the ledger: every DocRefId the
    ledger knows is used, except by the file's own message when the ledger has it."""
    message_ref_id = ""
    for _, elem in safexml.iterparse(path, tag="{*}MessageRefId"):
        message_ref_id = elem.text or ""
        break
    return _ledger_view(ledger, path, message_ref_id, set())


def _ledger_view(ledger: Ledger, path: Path, message_ref_id: str, earlier: set[str]) -> tuple[set[str], dict[str, str]]:
    """What the preflight needs of the ledger for one file: the DocRefIds already used by other
    messages (80000), and the state of every record the file names ("live" or "outdated"; 80002,
    80003, 80013, 80014). Records of this run's earlier messages count as live: they are
    published first."""
    ids: set[str] = set()
    for _, spec in safexml.iterparse(path, tag="{*}DocSpec"):
        for tag in ("DocRefId", "CorrDocRefId"):
            value = spec.findtext(f"{{*}}{tag}")
            if value:
                ids.add(value)
        safexml.release(spec)  # the sellers read so far with it: the tree never holds the file
    known = ledger.known_records(ids)
    used = {k for k, r in known.items() if r.message_ref_id != message_ref_id}
    states = {}
    for k, r in known.items():
        sent = r.message_status in ("published", "accepted") or r.message_ref_id in earlier
        current = r.status in ("sent", "accepted", "rejected")
        states[k] = "live" if sent and current else "outdated"
    return used, states


def _publish_one(
    settings: RunSettings,
    ledger: Ledger,
    out: Path,
    msg: dict[str, Any],
    *,
    triggered_by: str | None = None,
    approved_by: str | None = None,
) -> Path:
    """Copy one validated file to a temporary name in the output, then rename it into place in
    the ledger transaction that marks its message published: both happen, or neither. A retried
    publish of the same run finds its message published with the same file and goes on."""
    src = settings.run_path / "render" / msg["file"]
    dst = out / msg["file"]
    if file_sha256(src) != msg["sha256"]:
        raise XmlValidationError(f"{msg['file']} changed after it was rendered and validated; nothing was published")
    info = ledger.message(msg["message_ref_id"])
    if info.status in ("published", "accepted", "rejected"):
        if dst.is_file() and file_sha256(dst) == msg["sha256"]:
            log.info("message %s was published already (a retried publish)", msg["message_ref_id"])
            return dst
        raise LedgerError(f"message {msg['message_ref_id']} is {info.status} in the ledger, but {dst} is not its file")
    if info.status == "discarded":
        raise LedgerError(
            f"message {msg['message_ref_id']} was discarded (a later run planned the period again); "
            "this run cannot publish it: run again"
        )
    private_dirs(dst.parent)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)  # left by a crash: made again, 0600 from its first byte
    private_copy(src, tmp)
    try:
        with ledger.publishing(msg["message_ref_id"], triggered_by=triggered_by, approved_by=approved_by):
            os.replace(tmp, dst)
            fault_point("publish.after_rename")
    finally:
        tmp.unlink(missing_ok=True)
    fault_point("publish.after_commit")
    return dst


#: where files moved aside by :func:`sweep` go, inside the output directory: never uploaded
SET_ASIDE = "set-aside"
PUBLISHED_STATUSES = ("published", "accepted", "rejected")


def sweep(settings: RunSettings, ledger: Ledger, out: Path, authority: str) -> list[dict[str, str]]:
    """Make ``<out>/<authority>/`` hold exactly the files the ledger says are published.

    A run killed after a file was renamed into place but before its ledger transaction committed
    leaves a file whose message is not published (a later run discards it and files its
    sellers again): uploading the folder would send both. Every such file (its message
    discarded, or rendered by another run) is moved to ``<out>/set-aside/<authority>/``, and a
    temporary copy left by a crash is deleted. Called under the ledger lock of the authority and
    period, so that no other run is publishing; this run's own messages are left alone (a
    retried publish puts them in place). Files the ledger does not know are left as they are."""
    folder = out / authority
    moved: list[dict[str, str]] = []
    if not folder.is_dir():
        return moved
    # only the period the lock covers: an output folder shared by several years may hold another
    # year's message being published right now, under its own lock
    by_file = {
        m.file_name: m
        for m in ledger.messages(year=settings.year, authority=authority, environment=settings.environment)
        if m.file_name.startswith(f"{authority}/")
    }
    for name, m in by_file.items():
        if m.run_id != settings.run_id:  # a temporary copy of a crashed run of the period
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


def published_files(settings: RunSettings, out: Path) -> list[dict[str, Any]]:
    """Every file of the period the ledger says is published (or answered), of every authority
    of the environment, whether this run published it or an earlier one, and whether it is in
    the output directory: what the manifest and the view list, whatever crashed before."""
    if settings.preview:
        return []
    with open_ledger(ledger_url(settings)) as ledger:
        messages = ledger.messages(year=settings.year, environment=settings.environment)
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


def _publish_data_checks(settings: RunSettings, out: Path) -> dict[str, Any]:
    """The summaries of the run's data checks, and their Data Docs copied to
    ``<out>/reports/data-docs/<stage>/`` (replacing those of an earlier run)."""
    stages = {}
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


def combine_parts(settings: RunSettings, authority: str) -> dict[str, Any]:
    """The authority's validation report (``validate/authorities/<XX>.json``) from the reports of
    its files validated one by one (``validate/parts/<XX>/``), in the render's order. A file
    without a report makes the authority invalid: nothing of it is published unchecked."""
    render = rendered(settings, authority)
    results, failures = [], []
    for i, msg in enumerate(render["messages"]):
        path = settings.run_path / "validate" / "parts" / authority / f"{i:04d}.json"
        if not path.is_file():
            failures.append(f"{msg['file']}: not validated")
            continue
        part = read_json(path)
        if [f["file"] for f in part["files"]] != [msg["file"]]:
            failures.append(f"{msg['file']}: its validation report is of another file (rendered again since?)")
            continue
        results.extend(part["files"])
        failures.extend(part["failures"])
    summary = {"authority": authority, "files": results, "valid": not failures, "failures": failures}
    write_json(settings.stage_dir("validate/authorities") / f"{authority}.json", summary)
    return summary


def publish(
    settings: RunSettings,
    authority: str | None = None,
    *,
    triggered_by: str | None = None,
    approved_by: str | None = None,
    require_approval: bool = False,
) -> dict[str, Any]:
    """Move the validated files of one authority (or of all, then :func:`finalize`) to
    ``<out>/<authority>/``. Nothing is published unless every planned authority's files
    validated: one error in one file means nothing is published. With ``require_approval`` (the
    DAG's publish), a production filing is published only if the ledger holds a second person's
    approval of each of its messages (:func:`record_approval`), whatever happened in the UI."""
    authorities = planned_authorities(settings)
    invalid = [
        a
        for a in authorities
        if not (p := settings.run_path / "validate" / "authorities" / f"{a}.json").is_file()
        or not read_json(p)["valid"]
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
    files = []
    with (
        stage_ledger(settings, authority) as url,
        open_ledger(url) as ledger,
        ledger.lock(settings.environment, authority, settings.year, holder=settings.run_id),
    ):
        if require_approval and settings.environment == "prod" and not settings.preview:
            for msg in render["messages"]:
                info = ledger.message(msg["message_ref_id"])
                if info.status == "rendered":  # a retry finds some published already
                    approver = ledger.check_approved(info).approved_by  # raises without a recorded approval
                    approved_by = approved_by or approver
        set_aside = [] if settings.preview else sweep(settings, ledger, out, authority)
        # in the order planned (a correction of the PlatformOperator before the additions), each
        # file moved into place inside the transaction that records it as published
        for msg in render["messages"]:
            dst = _publish_one(settings, ledger, out, msg, triggered_by=triggered_by, approved_by=approved_by)
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
                    "sha256": file_sha256(dst),
                }
            )
    summary = {"authority": authority, "files": files, "set_aside": set_aside}
    write_json(settings.stage_dir("publish/authorities") / f"{authority}.json", summary)
    log.info("publish year=%s authority=%s: %d file(s)", settings.year, authority, len(files))
    return summary


def finalize(settings: RunSettings) -> dict[str, Any]:
    """After every authority is published: the explanation reports, the due-diligence report,
    the Data Docs and ``<out>/manifest.json`` with the files of every authority."""
    authorities = planned_authorities(settings)
    missing = [a for a in authorities if not (settings.run_path / "publish" / "authorities" / f"{a}.json").is_file()]
    if missing:
        raise XmlValidationError(f"not published yet for {', '.join(missing)}: the manifest waits for every authority")
    files = [
        f for a in authorities for f in read_json(settings.run_path / "publish" / "authorities" / f"{a}.json")["files"]
    ]
    validation = [
        f for a in authorities for f in read_json(settings.run_path / "validate" / "authorities" / f"{a}.json")["files"]
    ]
    set_aside = [
        f
        for a in authorities
        for f in read_json(settings.run_path / "publish" / "authorities" / f"{a}.json").get("set_aside", [])
    ]
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
    if settings.preview or settings.environment != "prod":
        return []
    ids = [m["message_ref_id"] for a in planned_authorities(settings) for m in rendered(settings, a)["messages"]]
    if ids:
        with open_ledger(ledger_url(settings)) as ledger:
            ledger.record_approval(ids, approved_by=approved_by, triggered_by=triggered_by)
    log.info("approval of %d message(s) by %s recorded in the ledger", len(ids), approved_by)
    return ids


def _sweep_all(settings: RunSettings, exclude: set[str]) -> list[dict[str, str]]:
    """:func:`sweep` of every authority folder in the output that this run did not publish to
    (a rerun with nothing to file, or a folder of an earlier routing), each under its lock."""
    out = Path(settings.out_dir)
    if settings.preview or not out.is_dir():
        return []
    folders = sorted(p.name for p in out.iterdir() if p.is_dir() and len(p.name) == 2 and p.name.isupper())
    moved: list[dict[str, str]] = []
    for authority in (a for a in folders if a not in exclude):
        with open_ledger(ledger_url(settings)) as ledger:
            try:
                with ledger.lock(settings.environment, authority, settings.year, holder=settings.run_id):
                    moved += sweep(settings, ledger, out, authority)
            except LedgerLockedError as exc:  # another run files there: its own publish sweeps
                log.warning("%s/ not checked for files to set aside: %s", authority, exc)
    return moved


def report(settings: RunSettings) -> dict[str, Any]:
    """The reports of a run that renders nothing (the quarterly watch): the explanation reports,
    the due-diligence report, the Data Docs, the run summary and ``<out>/manifest.json`` without
    files, straight after the rules stage."""
    manifest = _write_manifest(
        settings, files=[], set_aside=[], warnings=[], discarded=[], other_live_filings=[], watch=True
    )
    log.info("report year=%s: the reports of the watch (no XML) in %s", settings.year, settings.out_dir)
    return manifest


def _write_manifest(
    settings: RunSettings,
    *,
    files: list[dict[str, Any]],
    set_aside: list[dict[str, str]],
    warnings: list[dict[str, Any]],
    discarded: list[dict[str, Any]],
    other_live_filings: list[str],
    watch: bool = False,
) -> dict[str, Any]:
    """The reports, the Data Docs, the run summary and ``manifest.json``, written to the output."""
    out = private_dirs(settings.out_dir)
    keep_earlier_run(out, settings.run_id)  # before this run's reports replace that run's
    published = [] if watch else published_files(settings, out)
    reports = write_reports(settings, out)
    diligence = write_due_diligence(settings, out)
    checks = _publish_data_checks(settings, out)
    rules = read_json(settings.run_path / "rules" / "rules.json")
    extract = read_json(settings.run_path / "extract" / "extract.json")
    manifest = {
        "run_id": settings.run_id,
        "reporting_year": settings.year,
        "as_of": settings.as_of.isoformat(),
        "environment": settings.environment,
        "routing": settings.config.reporting.routing,
        # the member state filed in, whose law decided every seller; a preview is never a filing
        "filing_state": settings.filing_state,
        "preview": settings.preview,
        "reading": rules.get("reading"),
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


def keep_run_copy(out: Path, manifest: dict[str, Any]) -> Path:
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
    return keep_run_copy(out, {**earlier, "run_copy": f"{RUNS}/{key}"})


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
