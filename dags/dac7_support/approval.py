"""Four eyes: a production filing is published only after a second person approves it in the
Airflow UI (Airflow's human-in-the-loop ``ApprovalOperator``, standard provider, Airflow >= 3.1).

The ``gate`` task builds the request from the run's staging directory (:func:`approval_request`)
and writes it there (:func:`write_approval_request`); :class:`FilingApproval` shows its body
(Markdown) under *Required actions* and waits. A test run, or a run with nothing to file, skips
the approval. The figures are presentation of what the stages wrote; no rule is decided here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

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


def last_filings(run_dir: Path, settings: dict[str, Any], authorities: list[str]) -> dict[str, str]:
    """Per authority, the last message of the period the ledger holds as filed (before this run)."""
    from reporting.ledger import open_ledger
    from reporting.render import LIVE_MESSAGE_STATUSES, ledger_url
    from reporting.run import load_settings

    env, year = settings["config"]["reporting"]["environment"], settings["year"]
    run_settings = load_settings(run_dir)
    if run_settings.preview:  # a preview is never filed: no filing ledger to compare with
        return {a: "none: a preview is never filed" for a in authorities}
    out = {}
    with open_ledger(ledger_url(run_settings)) as ledger:
        for a in authorities:
            live = [
                m for m in ledger.messages(year=year, authority=a, environment=env) if m.status in LIVE_MESSAGE_STATUSES
            ]
            if live:
                m = max(live, key=lambda m: m.published or m.created)
                day = (m.published or m.created).date().isoformat()
                out[a] = f"{m.message_type_indic} {m.message_ref_id}, {m.sellers} seller(s), {m.status} {day}"
            else:
                out[a] = "none: first filing"
    return out


def approval_request(run_dir: str | Path) -> dict[str, Any]:
    """What the approver sees, from the run's staging directory: per authority the reportable
    sellers, the messages and records of this filing (new / corrected / deleted: the difference
    to the last filing), the Consideration they carry per currency, and the last filing of the
    period in the ledger. Counts, amounts and ids only: no seller's data.

    Returns ``{"year", "environment", "authorities", "messages", "body"}`` (``messages``: how many
    files this filing sends; ``body`` in Markdown)."""
    run = Path(run_dir)
    settings = _read(run / "settings.json")
    env, year = settings["config"]["reporting"]["environment"], settings["year"]
    authorities: list[str] = _read(run / "render" / "plan.json")["authorities"]
    reportable = _read(run / "rules" / "rules.json").get("sellers_per_authority", {})
    rendered = {a: _read(run / "render" / "authorities" / f"{a}.json") for a in authorities}
    last = last_filings(run, settings, authorities) if authorities else {}
    n_messages = sum(len(r["messages"]) for r in rendered.values())

    operator = settings["config"]["operator"]
    filing_state = operator.get("nexus_country") or operator["address"]["country"]
    preview = settings["config"]["reporting"]["routing"] == "jurisdiction"
    title = (
        f"preview of what each member state receives from {filing_state} (not a filing)"
        if preview
        else f"{'production' if env == 'prod' else 'test'} filing in {filing_state}"
    )
    lines = [
        f"### DAC7 {year}: {title}",
        "",
        f"As of {settings['as_of']}, routing {settings['config']['reporting']['routing']}, "
        f"mode {settings['mode']}, run {settings['run_id']}.",
        "",
    ]
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
            "| Authority | Reportable sellers | This filing (difference to the last) "
            "| Consideration sent | Last filing |",
            "|---|---:|---|---|---|",
        ]
        totals: dict[str, int] = defaultdict(int)
        n_records = 0
        for a in authorities:
            messages = rendered[a]["messages"]
            amounts: dict[str, int] = defaultdict(int)
            for m in messages:
                for cur, v in message_considerations(run / "render" / m["file"]).items():
                    amounts[cur] += v
            for cur, v in amounts.items():
                totals[cur] += v
            n_records += sum(sum(m.get("records", {}).values()) for m in messages)
            lines.append(
                f"| {a} | {reportable.get(a, 0)} | {_records(messages)} | {_money(dict(amounts))} | {last[a]} |"
            )
        lines += [
            "",
            f"Total: {len(authorities)} authorit{'y' if len(authorities) == 1 else 'ies'}, {n_messages} "
            f"message(s), {n_records} seller record(s), Consideration {_money(dict(totals))}.",
        ]
    others = _read(run / "render" / "plan.json").get("other_live_filings", [])
    if others:
        lines += [
            "",
            f"**Also in the ledger:** live filings of {year} to {', '.join(others)}, not the filing state "
            f"{filing_state} (filed under an earlier routing, or before the filing state changed). This filing "
            "neither corrects nor deletes them: withdraw them with that authority if they are wrong.",
        ]
    discarded = [d for a in authorities for d in rendered[a].get("discarded", [])]
    if discarded:
        lines += [
            "",
            f"Discarded before this run: {len(discarded)} message(s) rendered by an earlier run, never published.",
        ]
    lines += [
        "",
        "A preview is never approved, filed or transmitted: its files are published as test data, and its "
        "messages are recorded in ledgers of its own in the run's staging, never in the filing ledger."
        if preview
        else "**Approve** publishes these files and records them in the filing ledger. **Reject** publishes "
        "nothing: the run fails and says so. The person who triggered the run cannot approve it.",
    ]
    return {
        "year": year,
        "environment": env,
        "authorities": authorities,
        "messages": n_messages,
        "body": "\n".join(lines),
    }


def write_approval_request(run_dir: str | Path) -> dict[str, Any]:
    """Write the request to ``<run>/approval/request.json`` (staging, like every stage's output)
    and return it without its body: only a path and a few codes go through XCom."""
    from reporting.run import write_json

    request = approval_request(run_dir)
    path = Path(run_dir) / "approval" / "request.json"
    write_json(path, request)
    return {k: v for k, v in request.items() if k != "body"} | {"file": str(path)}


def check_second_person(triggered_by: str | None, responded_by: dict[str, Any] | None) -> None:
    """Four eyes: the approver is not the person who triggered the run (a scheduled run has no
    triggering user; any approver is then the second person)."""
    if not triggered_by or not responded_by:
        return
    if triggered_by in {responded_by.get("id"), responded_by.get("name")}:
        raise AirflowFailException(
            "the filing was approved by the person who triggered the run; four eyes need a second person "
            "to approve it: nothing was published, trigger a new run and have someone else approve it"
        )


class FilingApproval(ApprovalOperator):
    """Airflow's ``ApprovalOperator`` for a filing: skipped for a test run or when nothing is due;
    Reject fails the task (and so the run: nothing published); an approval by the person who
    triggered the run fails too. The request (see :func:`write_approval_request`) comes from the
    XCom of ``request_task_id``; its body, read from the staging directory, is what the approver
    sees under *Required actions*."""

    def __init__(self, *, request_task_id: str, **kwargs: Any) -> None:
        super().__init__(fail_on_reject=True, **kwargs)
        self.request_task_id = request_task_id

    def execute(self, context: Any) -> Any:
        request = context["ti"].xcom_pull(task_ids=self.request_task_id)
        if request["environment"] != "prod":
            raise AirflowSkipException("a test filing needs no approval")
        if not request["messages"]:
            raise AirflowSkipException("nothing to file, so nothing to approve")
        self.body = _read(Path(request["file"]))["body"]
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        result = super().execute_complete(context=context, event=event)
        triggered_by = getattr(context["dag_run"], "triggering_user_name", None) or None
        responded = result.get("responded_by_user")
        check_second_person(triggered_by, responded)
        record_approval(context["ti"].xcom_pull(task_ids=self.request_task_id), responded, triggered_by)
        return result


def record_approval(request: dict[str, Any], responded_by: dict[str, Any] | None, triggered_by: str | None) -> None:
    """Record the approval in the filing ledger, with the messages it covers: ``publish`` reads it
    back there and publishes nothing without it. So a production filing stays unpublished when
    someone marks this task done, clears it, or runs ``publish`` alone: none of that records an
    approval."""
    from dac7_support.staging import staged
    from reporting import pipeline

    approver = (responded_by or {}).get("name") or (responded_by or {}).get("id")
    if not approver:
        raise AirflowFailException("the approval names no approver; nothing was published")
    run_dir = str(Path(request["file"]).parents[1])  # <run>/approval/request.json
    with staged(run_dir) as here:
        pipeline.record_approval(here, approved_by=str(approver), triggered_by=triggered_by)
