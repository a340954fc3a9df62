"""Four eyes: a production filing is published only after a second person approves it in the
Airflow UI (Airflow's human-in-the-loop ``ApprovalOperator``, standard provider, Airflow >= 3.1).

The ``gate`` task builds the request from the run's staging directory (:func:`approval_request`)
and writes it there (:func:`write_approval_request`); :class:`FilingApproval` shows its body
(Markdown) under *Required actions* and waits. The figures are presentation of what the stages
wrote; no rule is decided here.

Who is asked: the approvers of ``DAC7_APPROVERS`` (read when ``gate`` runs, never at parse time),
minus the person who triggered the run, become the request's ``assigned_users``: Airflow then
refuses anyone else's answer (HTTP 403) and the request stays open. Where Airflow still takes an
approval by the person who triggered the run (no approver configured, or the simple auth
manager's all-admins mode), :class:`FilingApproval` refuses it, records why in the run's staging
(``approval/refused.jsonl``) and parks the same request again for another person: the filing
is not failed. A Reject by anyone fails the task: nothing is published.

A test run with only new data, a preview, or a run with nothing to file, skips the approval. A test run
that would send corrections or deletions asks for a confirmation first (anyone may confirm,
also the person who triggered the run), saying how many per authority.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskAwaitingInput

from reporting.vocabulary import JURISDICTION, PROD, QUARANTINED  # a leaf: nothing heavy at parse time

log = logging.getLogger("dac7.approval")

#: The environment variable that names the approvers of a production filing: user ids as the
#: auth manager knows them, comma-separated; ``id=name`` where the id is not the login name
#: (FAB's numeric ids). Read when the ``gate`` task runs.
APPROVERS_VAR = "DAC7_APPROVERS"
#: Where the view serves a run's pending (rendered, not yet published) files (plugins/dac7_pending.py).
PENDING_PREFIX = "/dac7/pending"

#: DocTypeIndic of a deleted record (production; test data). Its figures leave the filing.
DELETED = frozenset({"OECD3", "OECD13"})
RECORD_KINDS = (("new", "new"), ("correction", "corrected"), ("deletion", "deleted"), ("resend", "resent"))


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _localname(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def message_considerations(path: Path) -> dict[str, int]:
    """The Consideration of a rendered message per currency (whole units, as in ``MonAmnt``):
    the ``ConsQ1`` .. ``ConsQ4`` of every seller record it sends as new or corrected, deleted
    records left out. Streams the file; any profile (the elements keep their DPI names inside
    the national envelopes)."""
    from reporting import safexml

    totals: dict[str, Decimal] = defaultdict(Decimal)
    for _, el in safexml.iterparse(path, events=("end",)):
        if _localname(el.tag) != "ReportableSeller":
            continue
        indic = next((d.text for d in el.iter() if _localname(d.tag) == "DocTypeIndic"), None)
        if indic not in DELETED:
            for d in el.iter():
                if _localname(d.tag) in ("ConsQ1", "ConsQ2", "ConsQ3", "ConsQ4") and d.text:
                    totals[d.get("currCode") or "?"] += Decimal(d.text.strip())
        el.clear()
        while el.getprevious() is not None:  # keep memory flat over large messages
            del el.getparent()[0]
    return {cur: int(v) for cur, v in sorted(totals.items())}


def _money(amounts: dict[str, int]) -> str:
    return "; ".join(f"{cur} {n:,}" for cur, n in sorted(amounts.items())) or "-"


def _records(messages: list[dict[str, Any]]) -> str:
    kinds: dict[str, int] = defaultdict(int)
    for m in messages:
        for k, n in m.get("records", {}).items():
            kinds[k] += n
    parts = [f"{kinds[k]} {label}" for k, label in RECORD_KINDS if kinds.get(k)]
    indics = ", ".join(dict.fromkeys(m["message_type_indic"] for m in messages))
    return f"{indics}: {', '.join(parts) or 'no seller record'}" if messages else "nothing to file"


def last_filings(run_dir: Path, authorities: list[str]) -> dict[str, str]:
    """Per authority, the last message of the period the ledger holds as filed (before this run)."""
    from reporting import pipeline

    last = pipeline.last_filings(run_dir, authorities)
    if not last:  # a preview is never filed: no filing ledger to compare with
        return {a: "none: a preview is never filed" for a in authorities}
    out = {}
    for a, m in last.items():
        if m is None:
            out[a] = "none: first filing"
        else:
            day = (m.published or m.created).date().isoformat()
            out[a] = f"{m.message_type_indic} {m.message_ref_id}, {m.sellers} seller(s), {m.status} {day}"
    return out


def configured_approvers(value: str | None) -> list[dict[str, str]]:
    """The approvers named in ``DAC7_APPROVERS``: ``alice, bob`` or ``7=alice`` (id and name),
    as Airflow's ``HITLUser`` (``{"id", "name"}``); empty when unset."""
    users: dict[str, dict[str, str]] = {}
    for entry in (value or "").split(","):
        uid, _, name = (part.strip() for part in entry.strip().partition("="))
        if uid:
            users.setdefault(uid, {"id": uid, "name": name or uid})
    return list(users.values())


def is_person(user: dict[str, Any] | None, name: str | None) -> bool:
    """Whether ``user`` (an ``HITLUser``) is the person called ``name`` (by id or name)."""
    return bool(user and name) and name in {user.get("id"), user.get("name")}  # type: ignore[union-attr]


def asked_approvers(approvers: list[dict[str, str]], triggered_by: str | None) -> list[dict[str, str]]:
    """The approvers asked to approve a run: the configured ones minus the person who triggered it."""
    return [u for u in approvers if not is_person(u, triggered_by)]


def changes_per_authority(rendered: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per authority, the corrected and deleted seller records a filing sends, and its DPI402
    messages (corrections and deletions of earlier messages); authorities without any left out."""
    out = {}
    for a, r in rendered.items():
        messages = r["messages"]
        n = {
            "corrections": sum(m.get("records", {}).get("correction", 0) for m in messages),
            "deletions": sum(m.get("records", {}).get("deletion", 0) for m in messages),
            "dpi402": sum(1 for m in messages if m.get("message_type_indic") == "DPI402"),
        }
        if any(n.values()):
            out[a] = n
    return out


def held_back(run: Path) -> tuple[int, dict[str, int]]:
    """The sellers this filing does not carry: how many are quarantined (all reasons, the rules'
    decisions), and per authority how many crossed the thresholds but have incomplete data."""
    from reporting import pipeline

    decisions = pipeline.rules_summary(run).get("decisions", {})
    quarantined = sum(n for code, n in decisions.items() if code.startswith(QUARANTINED))
    return quarantined, pipeline.incomplete_per_authority(run)


def _names(users: list[dict[str, str]]) -> str:
    return ", ".join(u["name"] for u in users)


def approval_request(
    run_dir: str | Path,
    *,
    triggered_by: str | None = None,
    approvers: list[dict[str, str]] | None = None,
    pending_prefix: str = PENDING_PREFIX,
) -> dict[str, Any]:
    """What the approver sees, from the run's staging directory: per authority the reportable
    sellers, the messages and records of this filing (new / corrected / deleted: the difference
    to the last filing), the Consideration they carry per currency, and the last filing of the
    period in the ledger; then per message its MessageRefId, a link to the pending file (served
    by the view under ``pending_prefix``) and its sha256; the quarantined and incomplete sellers;
    who triggered the run and who is asked to approve it. Counts, amounts and ids only: no
    seller's data.

    ``approvers``: the configured approvers (:func:`configured_approvers`); those asked are the
    ones other than ``triggered_by``.

    Returns ``{"year", "environment", "authorities", "messages", "preview", "changes",
    "triggered_by", "assigned_users", "body"}`` (``messages``: how many files this filing sends; ``changes``:
    :func:`changes_per_authority`; ``assigned_users``: those asked, empty when anyone Airflow lets
    answer may; ``body`` in Markdown)."""
    from reporting import pipeline

    run = Path(run_dir)
    settings = pipeline.recorded_settings(run)
    env, year = settings["config"]["reporting"]["environment"], settings["year"]
    # each filing of the run: an authority, in a group's run an operator's (labelled "de_gmbh DE")
    authorities: list[str] = []
    reportable: dict[str, int] = {}
    rendered: dict[str, dict[str, Any]] = {}
    last: dict[str, str] = {}
    incomplete: dict[str, int] = {}
    diligence: dict[str, Any] = {}
    quarantined = 0
    others: list[str] = []
    states: dict[str, str] = {}
    for operator_id, own in pipeline.operator_runs(run):
        planned = pipeline.planned_authorities(own)
        labels = {a: pipeline.filing_label(run, operator_id, a) for a in planned}
        authorities += labels.values()
        per_authority = pipeline.rules_summary(own).get("sellers_per_authority", {})
        own_rendered = {a: pipeline.rendered(own, a) for a in planned}
        prefix = "" if Path(own) == run else f"operators/{operator_id}/"
        for a, label in labels.items():
            reportable[label] = per_authority.get(a, 0)
            rendered[label] = {
                **own_rendered[a],
                "messages": [{**m, "file": prefix + m["file"]} for m in own_rendered[a]["messages"]],
            }
        last.update({labels[a]: text for a, text in (last_filings(Path(own), planned) if planned else {}).items()})
        of_filings = pipeline.due_diligence_of_filings(own, planned) if planned else {}
        diligence.update({labels[a]: d for a, d in of_filings.items()})
        held, own_incomplete = held_back(Path(own))
        quarantined += held
        incomplete.update({pipeline.filing_label(run, operator_id, a): n for a, n in own_incomplete.items()})
        others += [pipeline.filing_label(run, operator_id, a) for a in pipeline.other_live_filings(own)]
        operator = pipeline.recorded_settings(own)["config"]["operator"]
        states[operator_id] = operator.get("nexus_country") or operator["address"]["country"]
    n_messages = sum(len(r["messages"]) for r in rendered.values())
    asked = asked_approvers(approvers or [], triggered_by)

    group = pipeline.is_group(run)
    filing_state = (
        ", ".join(f"{op} in {state}" for op, state in states.items()) if group else next(iter(states.values()))
    )
    preview = settings["config"]["reporting"]["routing"] == JURISDICTION
    title = (
        f"preview of what each member state receives from {filing_state} (not a filing)"
        if preview
        else f"{'production' if env == PROD else 'test'} filing in {filing_state}"
    )
    if group and not preview:
        title = f"{'production' if env == PROD else 'test'} filing of the group: {filing_state}"
    lines = [
        f"### DAC7 {year}: {title}",
        "",
        f"As of {settings['as_of']}, routing {settings['config']['reporting']['routing']}, "
        f"mode {settings['mode']}, run {settings['run_id']}.",
        "",
        f"Triggered by: **{triggered_by or 'the schedule (no person)'}**.",
        "",
    ]
    column = "Filing (operator, authority)" if group else "Authority"
    if not n_messages:
        lines.append(
            "Nothing to file: no authority has anything due"
            + (
                f" ({', '.join(authorities)}: the ledger holds the period as filed, nothing changed)."
                if authorities
                else "."
            )
        )
    else:
        lines += [
            f"| {column} | Reportable sellers | This filing (difference to the last) "
            "| Consideration sent | Last filing |",
            "|---|---:|---|---|---|",
        ]
        totals: dict[str, int] = defaultdict(int)
        n_records = 0
        for a in authorities:
            messages = rendered[a]["messages"]
            amounts: dict[str, int] = defaultdict(int)
            for m in messages:
                for cur, v in message_considerations(pipeline.rendered_file(run, m["file"])).items():
                    amounts[cur] += v
            for cur, v in amounts.items():
                totals[cur] += v
            n_records += sum(sum(m.get("records", {}).values()) for m in messages)
            lines.append(
                f"| {a} | {reportable.get(a, 0)} | {_records(messages)} | {_money(dict(amounts))} "
                f"| {last.get(a, 'none: first filing')} |"
            )
        n = len(authorities)  # in a group's run, filings: two operators may file with one authority
        counted = f"{n} filing{'' if n == 1 else 's'}" if group else f"{n} authorit{'y' if n == 1 else 'ies'}"
        lines += [
            "",
            f"Total: {counted}, {n_messages} message(s), {n_records} seller record(s), "
            f"Consideration {_money(dict(totals))}.",
            *due_diligence_lines(authorities, diligence),
            "",
            "#### The files to approve",
            "",
            f"| {column} | MessageRefId | Type | What is sent | Pending file |",
            "|---|---|---|---|---|",
        ]
        base = f"{pending_prefix.rstrip('/')}/{run.name}"
        files = [(a, m) for a in authorities for m in rendered[a]["messages"]]
        for a, m in files:
            name = m["file"].rsplit("/", 1)[-1]
            lines.append(
                f"| {a} | {m['message_ref_id']} | {m['message_type_indic']} | {_sent(m)} "
                f"| [{name}]({base}/{m['file']}) |"
            )
        lines += ["", "The sha256 of each pending file (the same as the file you open must have):", ""]
        lines += [f"- {m['file'].rsplit('/', 1)[-1]}: `{m.get('sha256', '')}`" for _a, m in files]
        lines += [
            "",
            f"The pending files open for users with the download permission; all of them: [{base}/]({base}/).",
        ]
    lines += [
        "",
        f"**Not in this filing:** {quarantined} seller(s) quarantined (not reported until their data is corrected; "
        "reports/quarantine.csv and the due-diligence report after the run)"
        + (
            "; of them, reportable with incomplete data: "
            + ", ".join(f"{a} {n}" for a, n in sorted(incomplete.items()))
            if incomplete
            else ""
        )
        + ".",
    ]
    if others:
        lines += [
            "",
            f"**Also in the ledger:** live filings of {year} to {', '.join(others)}, not the filing state "
            f"{filing_state} (filed under an earlier routing, or before the filing state changed). This filing "
            "neither corrects nor deletes them: withdraw them with that authority if they are wrong.",
        ]
    discarded = [d for a in authorities for d in rendered[a].get("discarded", [])]
    if group:
        lines += [
            "",
            "**A group's filing:** each operator files its own sellers in its own member state, under its own "
            "identity and ledger; this approval covers every operator's files above.",
        ]
    if discarded:
        lines += [
            "",
            f"Discarded before this run: {len(discarded)} message(s) rendered by an earlier run, never published.",
        ]
    if preview:
        lines += [
            "",
            "A preview is never approved, filed or transmitted: its files are published as test data, and its "
            "messages are recorded in ledgers of its own in the run's staging, never in the filing ledger.",
        ]
    else:
        who = (
            f"Asked to approve: **{_names(asked)}** (the approvers of {APPROVERS_VAR}, without the person who "
            "triggered the run)."
            if asked
            else "Asked to approve: anyone Airflow lets answer (no other approver is configured in "
            f"{APPROVERS_VAR}), except the person who triggered the run."
        )
        lines += [
            "",
            "**Approve** publishes these files and records them in the filing ledger. **Reject** publishes "
            "nothing: the run fails and says so. The person who triggered the run cannot approve it"
            + (
                f": an approval by {triggered_by} is refused and this request stays open for another person."
                if triggered_by
                else "."
            ),
            "",
            who,
        ]
    return {
        "year": year,
        "environment": env,
        "authorities": authorities,
        "messages": n_messages,
        "preview": preview,
        "due_diligence": {
            a: {"reportable": d.reportable, "incomplete": d.incomplete, "as_of": str(d.as_of) if d.as_of else None}
            for a, d in diligence.items()
        },
        "changes": changes_per_authority(rendered),
        "triggered_by": triggered_by,
        "assigned_users": asked,
        "body": "\n".join(lines),
    }


def due_diligence_lines(authorities: list[str], diligence: dict[str, Any]) -> list[str]:
    """The paragraph that says, per filing, how many of its reportable sellers the due-diligence
    state still finds incomplete (an item missing or invalid: reported with what is known, e.g.
    a TIN as unknown), as of the operator's latest daily run; or that due diligence never ran."""
    shown = [(a, diligence[a]) for a in authorities if a in diligence]
    if not shown:
        return []
    days = {d.as_of for _, d in shown}
    if days == {None}:
        return [
            "",
            "**Due diligence:** no daily due-diligence run is recorded in the ledger (the DAG "
            "dac7_due_diligence): how many of these sellers are still incomplete is not known.",
        ]
    counts = ", ".join(f"{a} {d.incomplete} of {d.reportable}" if d.as_of else f"{a} not run" for a, d in shown)
    when = " and ".join(sorted(str(day) for day in days if day))
    return [
        "",
        f"**Due diligence:** reportable sellers of this filing still incomplete (an item missing or invalid, as "
        f"of the daily run of {when}): {counts}.",
    ]


def _sent(message: dict[str, Any]) -> str:
    records = message.get("records", {})
    parts = [f"{records[k]} {label}" for k, label in RECORD_KINDS if records.get(k)]
    return ", ".join(parts) or "no seller record"


def confirmation_body(request: dict[str, Any]) -> str:
    """The question a test run asks before it files corrections or deletions: how many, per
    authority (a test filing needs no second person: anyone may confirm)."""
    lines = [
        f"### DAC7 {request['year']}: this test filing corrects or deletes earlier messages",
        "",
        "| Authority | Corrected records | Deleted records | Correction messages (DPI402) |",
        "|---|---:|---:|---:|",
    ]
    for a, n in sorted(request["changes"].items()):
        lines.append(f"| {a} | {n['corrections']} | {n['deletions']} | {n['dpi402']} |")
    lines += [
        "",
        "These are published into the test space and recorded in the ledger as filed there. If this was not "
        "meant (for example an as-of date left at its default), **Reject**: nothing is published. "
        "**Approve** files them; anyone may confirm, also the person who triggered the run.",
    ]
    return "\n".join(lines)


def pending_prefix() -> str:
    """Where the view serves pending files, below Airflow's base URL path (``[api] base_url``)."""
    from urllib.parse import urlparse

    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return urlparse(base).path.rstrip("/") + PENDING_PREFIX


def write_approval_request(run_dir: str | Path, *, triggered_by: str | None = None) -> dict[str, Any]:
    """Write the request to ``<run>/approval/request.json`` (staging, like every stage's output)
    and return it without its body and its due-diligence counts (the pending page reads them from
    the file): only a path and a few codes and names go through XCom. The approvers are read from
    ``DAC7_APPROVERS`` here, when the task runs."""
    from reporting.settings import write_json

    request = approval_request(
        run_dir,
        triggered_by=triggered_by,
        approvers=configured_approvers(os.environ.get(APPROVERS_VAR)),
        pending_prefix=pending_prefix(),
    )
    path = Path(run_dir) / "approval" / "request.json"
    write_json(path, request)
    return {k: v for k, v in request.items() if k not in ("body", "due_diligence")} | {"file": str(path)}


def request_body(request: dict[str, Any]) -> str:
    """The body (Markdown) of the request :func:`write_approval_request` wrote."""
    body: str = _read(Path(request["file"]))["body"]
    return body


def self_approval(triggered_by: str | None, responded_by: dict[str, Any] | None) -> bool:
    """Four eyes: whether the approver is the person who triggered the run (a scheduled run has
    no triggering user; any approver is then the second person)."""
    return is_person(responded_by, triggered_by)


def check_second_person(triggered_by: str | None, responded_by: dict[str, Any] | None) -> None:
    """Fails when the approver is the person who triggered the run (kept for callers that must
    stop there; :class:`FilingApproval` re-opens the request instead)."""
    if self_approval(triggered_by, responded_by):
        raise AirflowFailException(
            "the filing was approved by the person who triggered the run; four eyes need a second person "
            "to approve it: nothing was published, trigger a new run and have someone else approve it"
        )


def refusal_reason(triggered_by: str) -> str:
    return (
        f"{triggered_by} triggered this run and cannot approve it: four eyes need a second person. "
        "The request stays open for another approver; nothing was published."
    )


def record_refusal(request: dict[str, Any], responded_by: dict[str, Any], reason: str) -> None:
    """Append a refused answer to ``<run>/approval/refused.jsonl`` (who, when, why): the view's
    pending page lists them."""
    from dac7_support.tasks import in_run

    run_dir = str(Path(request["file"]).parents[1])
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": responded_by.get("name") or responded_by.get("id"),
        "answer": "Approve",
        "reason": reason,
    }
    with in_run(run_dir) as here:
        path = Path(here) / "approval" / "refused.jsonl"
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


class FilingApproval(ApprovalOperator):
    """Airflow's ``ApprovalOperator`` for a filing. A production filing asks the approvers of the
    request (``assigned_users``: the configured approvers minus the person who triggered the
    run); an approval by the person who triggered the run is refused and the request stays open;
    Reject fails the task (and so the run: nothing published). A test run that would file
    corrections or deletions asks anyone to confirm; any other test run, or a run with nothing to
    file, skips. The request (see :func:`write_approval_request`) comes from the XCom of
    ``request_task_id``; its body, read from the staging directory, is what the approver sees
    under *Required actions*."""

    def __init__(self, *, request_task_id: str, **kwargs: Any) -> None:
        super().__init__(fail_on_reject=True, **kwargs)
        self.request_task_id = request_task_id

    def execute(self, context: Any) -> Any:
        request = context["ti"].xcom_pull(task_ids=self.request_task_id)
        if not request["messages"]:
            raise AirflowSkipException("nothing to file, so nothing to approve")
        if request["environment"] != PROD:
            if request.get("preview"):
                raise AirflowSkipException("a test filing needs no approval: a preview is never filed")
            if not request.get("changes"):
                raise AirflowSkipException("a test filing needs no approval: it sends new data only")
            self.subject = f"File corrections or deletions of DAC7 {request['year']} in the test space?"
            self.body = confirmation_body(request)
            self.assigned_users = None  # anyone may confirm a test filing
            return super().execute(context)
        self.body = request_body(request)
        self.assigned_users = request.get("assigned_users") or None
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        request = context["ti"].xcom_pull(task_ids=self.request_task_id)
        triggered_by = getattr(context["dag_run"], "triggering_user_name", None) or None
        responded = event.get("responded_by_user")
        prod = request["environment"] == PROD
        approved = "error" not in event and event.get("chosen_options") == [self.APPROVE]
        if prod and approved and triggered_by and self_approval(triggered_by, responded):
            self.reopen(context, request, responded, refusal_reason(triggered_by))
        result = super().execute_complete(context=context, event=event)
        if prod:
            record_approval(request, result.get("responded_by_user"), triggered_by)
        return result

    def reopen(self, context: Any, request: dict[str, Any], responded: dict[str, Any], reason: str) -> None:
        """Refuse an answer: record why, clear it from the request (Airflow keeps one request per
        task try; writing it again removes its answer) and wait for another person's."""
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        log.warning("approval refused: %s", reason)
        record_refusal(request, responded, reason)
        upsert_hitl_detail(
            ti_id=context["task_instance"].id,
            options=self.options,
            subject=self.subject,
            body=self.body,
            defaults=self.defaults,
            multiple=self.multiple,
            params=self.serialized_params,
            assigned_users=self.assigned_users,
        )
        raise TaskAwaitingInput(method_name="execute_complete", timeout=self.response_timeout)


def record_approval(request: dict[str, Any], responded_by: dict[str, Any] | None, triggered_by: str | None) -> None:
    """Record the approval in the filing ledger, with the messages it covers: ``publish`` reads it
    back there and publishes nothing without it. So a production filing stays unpublished when
    someone marks this task done, clears it, or runs ``publish`` alone: none of that records an
    approval."""
    from dac7_support.tasks import in_run
    from reporting import pipeline

    check_second_person(triggered_by, responded_by)  # never recorded for the person who triggered
    approver = (responded_by or {}).get("name") or (responded_by or {}).get("id")
    if not approver:
        raise AirflowFailException("the approval names no approver; nothing was published")
    run_dir = str(Path(request["file"]).parents[1])  # <run>/approval/request.json
    with in_run(run_dir) as here:
        pipeline.record_approval(here, approved_by=str(approver), triggered_by=triggered_by)
