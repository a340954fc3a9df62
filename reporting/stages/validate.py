"""Validate: nothing is published unless every file of the run is schema-valid and passes the
authority's business rules.

Each rendered file is checked against its profile's schema (:mod:`reporting.checks.schema`),
then against the business rules the schema cannot express, with the authority's own error codes
and the ledger's state of the records it names (:mod:`reporting.checks.business`). The report of
each authority is ``validate/authorities/<XX>.json``; publish reads it and refuses an authority
whose files did not validate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import overload

from lxml import etree

from reporting import safexml
from reporting.authorities import select_profile
from reporting.checks.business import EU_EXCHANGE, RuleFinding, check_message
from reporting.checks.schema import load_schema, validate_file
from reporting.errors import ConfigError, XmlValidationError
from reporting.files import file_sha256
from reporting.ledger import Ledger, open_ledger
from reporting.results import AuthorityValidation, FileValidation, Rendered, Validation
from reporting.settings import RunSettings, read_json, remember_secret_url, secret_url, write_json
from reporting.stages.plan import planned_authorities, stage_ledger
from reporting.stages.render import overlapped_path, rendered
from reporting.vocabulary import TEST
from reporting.workers import Worker, WorkerError, cpu_count, run_ordered, workers_for

log = logging.getLogger(__name__)


def validation_path(run_path: Path, authority: str) -> Path:
    """The authority's validation report, ``validate/authorities/<XX>.json`` in the run's staging."""
    return run_path / "validate" / "authorities" / f"{authority}.json"


@overload
def validate(settings: RunSettings, authority: None = None, part: None = None) -> Validation: ...
@overload
def validate(settings: RunSettings, authority: str, part: int | None = None) -> AuthorityValidation: ...
@overload
def validate(
    settings: RunSettings, authority: str | None = None, part: int | None = None
) -> Validation | AuthorityValidation: ...


def validate(
    settings: RunSettings, authority: str | None = None, part: int | None = None
) -> Validation | AuthorityValidation:
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
        summary: Validation = {"files": [f for p in parts for f in p["files"]], "valid": all(p["valid"] for p in parts)}
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


def combine_parts(settings: RunSettings, authority: str) -> AuthorityValidation:
    """The authority's validation report (``validate/authorities/<XX>.json``) from the reports of
    its files validated one by one (``validate/parts/<XX>/``), in the render's order. A file
    without a report makes the authority invalid: nothing of it is published unchecked."""
    render = rendered(settings, authority)
    results: list[FileValidation] = []
    failures: list[str] = []
    for i, msg in enumerate(render["messages"]):
        path = settings.run_path / "validate" / "parts" / authority / f"{i:04d}.json"
        if not path.is_file():
            failures.append(f"{msg['file']}: not validated")
            continue
        part: AuthorityValidation = read_json(path)
        if [f["file"] for f in part["files"]] != [msg["file"]]:
            failures.append(f"{msg['file']}: its validation report is of another file (rendered again since?)")
            continue
        results.extend(part["files"])
        failures.extend(part["failures"])
    summary: AuthorityValidation = {
        "authority": authority,
        "files": results,
        "valid": not failures,
        "failures": failures,
    }
    write_json(settings.stage_dir("validate/authorities") / f"{authority}.json", summary)
    return summary


#: A worker process starts in about 0.6 s (its imports), the time to check some 5 MB of XML: one
#: is started for every this many bytes of the run's files, up to one per CPU.
BYTES_PER_WORKER = 8 << 20


def _validate_all(
    settings: RunSettings, authorities: list[str], *, workers: int | None = None
) -> list[AuthorityValidation]:
    """:func:`_validate` of every authority, in order: the reports made beside the render
    (:class:`Overlapped`) of files unchanged since are taken as they are, the other authorities'
    files are checked in parallel in worker processes (one per CPU and :data:`BYTES_PER_WORKER`,
    this process counting as one; ``workers`` when given), each report written and logged here in
    the order of ``authorities``, as one after the other would (the first authority whose check
    raised raises here, after the reports of those before it are written)."""
    adopted = {a: summary for a in authorities if (summary := _adopted(settings, a)) is not None}
    rest = [a for a in authorities if a not in adopted]
    checked = iter(_check_all(settings, rest, workers))
    return [_write_validation(settings, a, adopted[a] if a in adopted else next(checked), None) for a in authorities]


def _check_all(settings: RunSettings, authorities: list[str], workers: int | None) -> Iterator[AuthorityValidation]:
    """:func:`_check` of each authority, in order, in worker processes where they pay (see
    :func:`_validate_all`)."""
    if len(authorities) <= 1 or workers == 1:
        return (_check(settings, a) for a in authorities)
    weights = [_rendered_bytes(settings, a) for a in authorities]
    if workers is None:
        workers = min(workers_for(len(authorities)), max(1, sum(weights) // BYTES_PER_WORKER))
    if workers <= 1:
        return (_check(settings, a) for a in authorities)
    secret = secret_url(settings.run_id, "ledger")  # kept in memory: handed to the workers over their pipe
    jobs = [(settings, a, secret) for a in authorities]
    return run_ordered(_check_job, jobs, workers=workers, weights=weights)


def _rendered_bytes(settings: RunSettings, authority: str) -> int:
    """The size of an authority's rendered files (what is missing counts 0: its check says so)."""
    try:
        messages = rendered(settings, authority)["messages"]
    except Exception:  # raised again, in its turn, by the authority's check
        return 0
    paths = (settings.run_path / "render" / m["file"] for m in messages)
    return sum(p.stat().st_size for p in paths if p.is_file())


def _check_job(settings: RunSettings, authority: str, secret: str | None) -> AuthorityValidation:
    """A worker's job: :func:`_check` of one authority (a worker process has the umask of the
    stage that started it)."""
    if secret is not None:
        remember_secret_url(settings.run_id, "ledger", secret)
    return _check(settings, authority)


def _validate(settings: RunSettings, authority: str, only: int | None = None) -> AuthorityValidation:
    summary = _adopted(settings, authority) if only is None else None
    return _write_validation(settings, authority, summary or _check(settings, authority, only), only)


class Overlapped:
    """The validation of each authority's files beside the render of the next ones: a render of
    every authority hands each one, once rendered, to a worker process, which checks its files as
    the validate stage does (:func:`_check`, in the render's order) while this process renders
    on, on the other core. The reports are written to ``validate/overlapped/<XX>.json`` with the
    sha256 of every file checked (taken before and after the check); the validate stage takes such
    a report as its own only while every file is still the one rendered and checked
    (:func:`_adopted`), and checks anything else itself. Nothing here raises: a worker that does
    not start, dies or whose check raised leaves that authority to the validate stage."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.sent: list[str] = []
        self.worker: Worker | None = None
        # on one core the validate stage does the same work after the render
        self.started = cpu_count() <= 1

    def rendered(self, authority: str) -> None:
        """The render of ``authority`` is done: its files are checked from now on (the worker
        started with the first one)."""
        if not self.settings.preview:  # a filing shares its ledger: its files are checked by the stage
            return
        if not self.started:
            self.started = True
            try:
                self.worker = Worker()
            except OSError:
                log.info("validation beside the render: no worker process could start; the validate stage checks")
        if self.worker is None:
            return
        try:
            self.worker.send(_overlap_job, self.settings, authority, secret_url(self.settings.run_id, "ledger"))
        except WorkerError:  # gone: the validate stage checks what was not sent
            self.close()
            return
        self.sent.append(authority)

    def finish(self) -> None:
        """Wait for the checks under way and write their reports (none of an authority whose
        check did not finish)."""
        worker, sent = self.worker, self.sent
        if worker is None:
            return
        for authority in sent:
            try:
                report = worker.receive()
            except WorkerError:  # the worker is gone: the validate stage checks the rest
                log.info("validation beside the render stopped at %s; the validate stage checks the rest", authority)
                break
            except Exception:  # the check raised: the validate stage checks it again, and says why
                log.info("validation beside the render of %s did not finish; the validate stage checks it", authority)
                continue
            if report is not None:
                write_json(overlapped_path(self.settings.run_path, authority), report)  # its folder made
        self.close()

    def close(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.close(wait=False)


def _overlap_job(settings: RunSettings, authority: str, secret: str | None) -> dict[str, object] | None:
    """A worker's job for :class:`Overlapped`: :func:`_check` of one authority, with the sha256 of
    each file it checked, or None when a file changed meanwhile or differs from the render's."""
    if secret is not None:
        remember_secret_url(settings.run_id, "ledger", secret)
    render = rendered(settings, authority)
    before = _file_hashes(settings, render)
    if before is None or before != {m["file"]: m["sha256"] for m in render["messages"]}:
        return None
    schemas = _schema_hashes(settings, render)
    summary = _check(settings, authority)
    if _file_hashes(settings, render) != before or _schema_hashes(settings, render) != schemas:
        return None
    return {"sha256": before, "schemas": schemas, "summary": summary}


def _schema_hashes(settings: RunSettings, render: Rendered) -> dict[str, str]:
    """The sha256 of the official schema each rendered file is checked against: a report made
    against other schema files is not taken."""
    hashes: dict[str, str] = {}
    for msg in render["messages"]:
        profile = select_profile(msg["authority"], settings.config)
        xsd_dir = settings.identifiers(msg["authority"]).get("xsd_dir") or settings.xsd_dir
        schema = Path(profile.official_schema(xsd_dir))
        hashes[msg["file"]] = file_sha256(schema) if schema.is_file() else ""
    return hashes


def _file_hashes(settings: RunSettings, render: Rendered) -> dict[str, str] | None:
    """The sha256 of each rendered file as it is now, None when one is missing."""
    paths = {m["file"]: settings.run_path / "render" / m["file"] for m in render["messages"]}
    if not all(p.is_file() for p in paths.values()):
        return None
    return {name: file_sha256(path) for name, path in paths.items()}


def _adopted(settings: RunSettings, authority: str) -> AuthorityValidation | None:
    """The report :class:`Overlapped` made of the authority's files, when every file is the one
    the render wrote and recorded, and the one that was checked; else None (checked here)."""
    path = overlapped_path(settings.run_path, authority)
    if not path.is_file():
        return None
    try:
        report = read_json(path)
        render = rendered(settings, authority)
        recorded = {m["file"]: m["sha256"] for m in render["messages"]}
        summary: AuthorityValidation = report["summary"]
        if (
            report["sha256"] != recorded
            or [f["file"] for f in summary["files"]] != [m["file"] for m in render["messages"]]
            or report.get("schemas") != _schema_hashes(settings, render)
            or _file_hashes(settings, render) != recorded
        ):
            return None
    except (OSError, ValueError, KeyError, TypeError):  # unreadable or not such a report: checked here
        return None
    log.info("validate year=%s authority=%s: checked beside the render, files unchanged", settings.year, authority)
    return summary


def _check(settings: RunSettings, authority: str, only: int | None = None) -> AuthorityValidation:
    render = rendered(settings, authority)
    if only is not None and not 0 <= only < len(render["messages"]):
        raise ConfigError(f"{authority} has {len(render['messages'])} rendered file(s): there is no file {only + 1}")
    with stage_ledger(settings, authority, write=False) as url, open_ledger(url) as ledger:
        return _check_with(settings, authority, render, ledger, only)


def _check_with(
    settings: RunSettings, authority: str, render: Rendered, ledger: Ledger, only: int | None
) -> AuthorityValidation:
    """The validation report of an authority's files (or of its ``only``-th), written nowhere."""
    results: list[FileValidation] = []
    failures: list[str] = []
    earlier: set[str] = set()  # this run's messages before the current one (published first)
    for i, msg in enumerate(render["messages"]):
        if only is not None and i != only:
            earlier.add(msg["message_ref_id"])
            continue
        path = settings.run_path / "render" / msg["file"]
        profile = select_profile(msg["authority"], settings.config)
        # The authority's current official schema package, where the configuration points at one.
        xsd_dir = settings.identifiers(msg["authority"]).get("xsd_dir") or settings.xsd_dir
        errors = validate_file(path, load_schema(str(profile.official_schema(xsd_dir))))
        findings = profile.extra_checks(path) if not errors else []
        if not errors:  # the authority's checks at upload beyond the schema (HMRC's), before publishing
            findings += [
                RuleFinding(c.name, "upload", "error", None, "/", c.text)
                for c in profile.upload_checks(path, settings.identifiers(msg["authority"]))
                if not c.ok
            ]
        if not errors and profile.rule_set.codes:
            # A preview shows what the filing state forwards to each state: the rules of the
            # exchange between authorities apply (each state receives only sellers resident
            # there or with property there, 40070, and the other exchange-only rules).
            rules = EU_EXCHANGE if settings.preview else profile.rule_set
            if settings.environment == TEST and settings.period.reporting_period > settings.timestamp.date():
                # A test preview of the running year: its period has not ended yet (10060).
                rules = rules.derive(f"{rules.name}, running year", exclude={"10060"} & rules.codes)
            # the ledger asked about the records' ids in the rules' own reading of the file
            findings += check_message(
                path,
                rules=rules,
                today=settings.timestamp.date(),
                receiving_country=msg["authority"],
                ask_ledger=_ledger_answers(ledger, msg["message_ref_id"], earlier),
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
        failures.extend(
            f"{msg['file']}:{e.line}: {e.message}" + (f" (at {e.path})" if e.path else "") for e in errors[:20]
        )
        failures.extend(f"{msg['file']}: {f.describe()}" for f in findings if f.severity == "error")
    return {"authority": authority, "files": results, "valid": not failures, "failures": failures}


def _write_validation(
    settings: RunSettings, authority: str, summary: AuthorityValidation, only: int | None
) -> AuthorityValidation:
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
    """:func:`_ledger_answers` for every DocRefId and CorrDocRefId of a file's DocSpecs, read
    apart (the validation asks in the business rules' own reading instead)."""
    ids: set[str] = set()
    for read, (_, elem) in enumerate(safexml.iterparse(path, tag=("{*}DocRefId", "{*}CorrDocRefId")), 1):
        parent = elem.getparent()
        if elem.text and parent is not None and etree.QName(parent).localname == "DocSpec":
            ids.add(elem.text)
        if read % safexml.RELEASE_EVERY == 0:
            safexml.release(elem)  # the sellers read so far with it: the tree never holds the file
    return _ledger_answers(ledger, message_ref_id, earlier)(ids)


def _ledger_answers(
    ledger: Ledger, message_ref_id: str, earlier: set[str]
) -> Callable[[set[str]], tuple[set[str], dict[str, str]]]:
    """What the preflight needs of the ledger about some DocRefIds of the message
    ``message_ref_id``: those already used by other messages (80000), and the state of every
    one the ledger knows ("live" or "outdated"; 80002, 80003, 80013, 80014). Records of this
    run's earlier messages (``earlier``, as it is when asked) count as live: they are published
    first. The answer for an id does not depend on the others asked with it."""

    def answers(ids: set[str]) -> tuple[set[str], dict[str, str]]:
        known = ledger.known_records(ids)
        used = {k for k, r in known.items() if r.message_ref_id != message_ref_id}
        states = {}
        for k, r in known.items():
            sent = r.message_status in ("published", "accepted") or r.message_ref_id in earlier
            current = r.status in ("sent", "accepted", "rejected")
            states[k] = "live" if sent and current else "outdated"
        return used, states

    return answers
