"""The outbox: an upload package for every authority without an interface we drive.

For each published message to FR, IT, HU, GB, an EU generic state (and DE, when a person uploads
by hand), ``<out>/outbox/<XX>/<MessageRefId>/`` holds:

* the file under the authority's own naming (the name the profile gave it when it was rendered;
  for FR, gzip then OpenPGP to the DGFiP key of ``[transmission] fr_public_key``, as
  ``<name>.gz.gpg``: :func:`reporting.authorities.fr.package_for_transmission`);
* ``checklist.json`` and ``checklist.md``: the checks the authority applies at upload (size,
  naming, encryption, the file unchanged since it was published, and the authority's own checks
  where the profile knows them: HMRC's, :func:`reporting.authorities.gb.upload_checks`) with
  their result, and the steps for the person: what to choose in the portal where the authority
  checks it (HMRC: the platform operator, no manual assumed report), upload in the portal,
  ``dac7 ledger mark-uploaded``, then ``dac7 status-import`` with the answer.

The ledger records the package as ``prepared`` and the upload as ``uploaded`` (who and when).
What each portal is comes from the reference notes (docs/guide/transmission.md); where no
source names a portal or a limit, the checklist says so instead of guessing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reporting.authorities import profile_for
from reporting.files import file_sha256
from reporting.ledger import Ledger
from reporting.ledger.model import OUTBOX, PREPARED
from reporting.private import private_copy, private_dirs
from reporting.settings import write_json
from reporting.transmit.errors import PermanentTransmissionError

log = logging.getLogger(__name__)

OUTBOX_DIR = "outbox"
CHECKLIST = "checklist.json"


@dataclass(frozen=True, slots=True)
class Portal:
    authority: str
    where: str
    encrypt: bool = False  # gzip + OpenPGP to the authority's key before the upload
    source: str = ""
    #: whether the authority offers operators a test upload; without one a test run's package is for review only
    test_upload: bool = True


#: The upload channel of each authority that takes a portal upload, with where it comes from.
PORTALS: dict[str, Portal] = {
    "FR": Portal(
        "DGFiP",
        "the DGFiP's DAC7 deposit (professional space of impots.gouv.fr)",
        encrypt=True,
        source="reference notes §6.2: gzip, then OpenPGP (binary) to the DGFiP key of the environment "
        "(Back Market dac7, encryption.py); the portal's name is not from a DGFiP text",
    ),
    "IT": Portal(
        "Agenzia delle Entrate",
        "the telematic channel (Entratel / Fisconline): the supply in its telematic envelope",
        source="reference notes §6.4 (the telematic envelope fornituraDPIT); channel names not verified",
    ),
    "GB": Portal(
        "HMRC",
        "HMRC's digital platform reporting service on GOV.UK (sign in with the Government Gateway user of the "
        "registration, choose the platform operator, upload an XML file)",
        source="HMRC IEIM904300 (a direction: the OECD XML schema through the digital platform reporting service); "
        "GOV.UK, Create a digital platform report (https://www.gov.uk/guidance/create-a-digital-platform-report); "
        "hmrc/digital-platform-reporting-submission-frontend (the upload journey)",
        # the service has one environment for operators: neither HMRC's guidance nor its services
        # (hmrc/digital-platform-reporting, -submission-frontend) offer operators a test upload
        test_upload=False,
    ),
    "HU": Portal(
        "NAV",
        "NAV's electronic filing of the DPI_HU file (checked first with NAV's own validator)",
        source="reference notes §6.3 (NAV validator readme); the upload channel is not named in a stored source",
    ),
}


def portal_for(authority: str) -> Portal:
    return PORTALS.get(
        authority,
        Portal(
            f"the competent authority of {authority}",
            "its DAC7 portal (no channel, naming or size information was found for it: ask the authority)",
            source="reference notes §6 (no channel information found)",
        ),
    )


@dataclass(frozen=True, slots=True)
class OutboxPackage:
    message_ref_id: str
    authority: str
    folder: Path
    files: tuple[str, ...]
    checks: tuple[dict[str, Any], ...]
    ready: bool  # every check passed: the person may upload


def package_dir(out_dir: str | Path, authority: str, message_ref_id: str) -> Path:
    return Path(out_dir) / OUTBOX_DIR / authority / message_ref_id


def prepare_package(
    ledger: Ledger,
    message_ref_id: str,
    published: Path,
    out_dir: str | Path,
    *,
    actor: str,
    fr_public_key: str | None = None,
) -> OutboxPackage:
    """Write the upload package of one published message and record it as prepared (once)."""
    info = ledger.message(message_ref_id)
    authority = info.authority
    portal = portal_for(authority)
    profile = profile_for(authority)
    folder = private_dirs(package_dir(out_dir, authority, message_ref_id))
    if not published.is_file():
        raise PermanentTransmissionError(f"message {message_ref_id}: its published file {published} is missing")
    checks: list[dict[str, Any]] = []
    unchanged = file_sha256(published) == info.sha256
    checks.append(_check("unchanged", unchanged, "the file is the one published and recorded in the ledger (SHA-256)"))
    recorded = Path(info.file_name).name
    follows = getattr(profile, "follows_naming", None)
    named = published.name == recorded and (
        follows is None or follows(published.name, message_ref_id, info.reporting_year)
    )
    checks.append(
        _check(
            "naming",
            named,
            f"the file is named as the {profile.edition} profile names it: {published.name}"
            + ("" if named else f" does not follow its naming rule (recorded as {recorded})"),
        )
    )
    files: list[str] = []
    name = Path(info.file_name).name  # the ledger names it <authority>/<name>
    upload = folder / name
    if portal.encrypt:
        if fr_public_key:
            from reporting.authorities.fr import DGFIP_KEY_FINGERPRINTS, package_for_transmission

            # only the DGFiP key of the message's environment: any other key is refused (ConfigError)
            expected = DGFIP_KEY_FINGERPRINTS[info.environment]
            upload = package_for_transmission(
                published, fr_public_key, folder / f"{name}.gz.gpg", expected_fingerprint=expected
            )
            checks.append(
                _check(
                    "encryption",
                    True,
                    f"gzip, then OpenPGP to the DGFiP {info.environment} key {expected} ([transmission] fr_public_key)",
                )
            )
        else:
            checks.append(
                _check(
                    "encryption",
                    False,
                    "the DGFiP takes the file gzip-compressed and OpenPGP-encrypted to its key: set "
                    "[transmission] fr_public_key to the DGFiP key of the environment, then run transmit again",
                )
            )
            upload = folder / name
            private_copy(published, upload)
    else:
        private_copy(published, upload)
    files.append(upload.name)
    size = upload.stat().st_size
    limit = getattr(profile, "max_file_bytes", None)
    checks.append(
        _check(
            "size",
            limit is None or size <= limit,
            f"{size} bytes" + (f", at most {limit}" if limit else " (no size limit published for this authority)"),
        )
    )
    # the authority's own checks at upload (HMRC's), the schema included, on the file as uploaded
    schema = profile.official_schema(None)
    checks += [_check(c.name, c.ok, c.text) for c in profile.upload_checks(upload, {}, schema=schema)]
    ready = all(c["ok"] for c in checks)
    checklist = {
        "message_ref_id": message_ref_id,
        "authority": authority,
        "environment": info.environment,
        "reporting_year": info.reporting_year,
        "message_type_indic": info.message_type_indic,
        "portal": {"authority": portal.authority, "where": portal.where, "source": portal.source},
        "files": [{"name": upload.name, "bytes": size, "sha256": file_sha256(upload)}],
        "checks": checks,
        "ready": ready,
        "steps": _steps(info.environment, portal, upload.name, message_ref_id, _before_upload(authority, upload)),
    }
    write_json(folder / CHECKLIST, checklist)
    _write_markdown(folder / "checklist.md", checklist)
    if not any(e.event == PREPARED for e in ledger.transmissions(message_ref_id)):
        ledger.record_transmission(message_ref_id, event=PREPARED, channel=OUTBOX, actor=actor)
    log.info("outbox package of %s for %s: %s", message_ref_id, authority, "ready" if ready else "not ready")
    return OutboxPackage(message_ref_id, authority, folder, tuple(files), tuple(checks), ready)


def read_checklist(folder: Path) -> dict[str, Any] | None:
    import json

    path = folder / CHECKLIST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _check(name: str, ok: bool, text: str) -> dict[str, Any]:
    return {"check": name, "ok": ok, "text": text}


def _before_upload(authority: str, upload: Path) -> list[str]:
    """What the person checks in the portal before the upload, where the authority asks for it."""
    steps = BEFORE_UPLOAD.get(authority, ())
    if not steps:
        return []
    from reporting.authorities.gb import sending_entity_in

    return [step.format(poid=sending_entity_in(upload) or "?") for step in steps]


#: The steps in the portal an authority's service checks and a file cannot show, with their source.
BEFORE_UPLOAD: dict[str, tuple[str, ...]] = {
    "GB": (
        # ValidationService: SendingEntityIN must be the ID of the operator chosen in the service
        "Choose the platform operator whose platform operator ID is {poid} (SendingEntityIN): HMRC refuses a file "
        "whose SendingEntityIN is not the chosen operator's ID (PlatformOperatorIdMismatch).",
        # ValidationService.checkForManualAssumedReport
        "Check that no assumed report was made in the service for this platform operator and year: HMRC refuses "
        "the upload while one exists (ManualAssumedReportExists); delete it there first.",
    ),
}


def _steps(environment: str, portal: Portal, file: str, message_ref_id: str, before: list[str]) -> list[str]:
    if environment == "test" and not portal.test_upload:
        return [
            f"{portal.authority} offers platform operators no test upload: this test run's package is for review "
            f"only. Do not upload {file}; upload the package of a production run, after these checks in the service:",
            *before,
        ]
    where = "the authority's test environment" if environment == "test" else "production"
    return [
        f"Open {portal.where} ({portal.authority}), {where}.",
        *before,
        f"Upload {file} from this folder; keep the receipt the portal shows.",
        f"Record the upload: dac7 ledger mark-uploaded {message_ref_id} --by <your name> (or in the DAC7 view).",
        "When the authority's answer (status message) arrives: dac7 status-import <file>; the next run corrects "
        "what it rejected.",
    ]


def _write_markdown(path: Path, c: dict[str, Any]) -> None:
    lines = [
        f"# Upload {c['message_ref_id']} to {c['portal']['authority']}",
        "",
        f"{c['authority']} {c['reporting_year']}, {c['environment']}, {c['message_type_indic']}.",
        "",
        "## Checks",
        *(f"- [{'x' if k['ok'] else ' '}] {k['check']}: {k['text']}" for k in c["checks"]),
        "",
        "## Steps",
        *(f"{n}. {s}" for n, s in enumerate(c["steps"], 1)),
        "",
        f"Source of the portal: {c['portal']['source']}",
        "",
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    import os

    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    os.replace(tmp, path)
