"""The DAC7 view's trigger page: a filing run that cannot start with a combination that cannot run.

``<prefix>/trigger``: a form (server-rendered, no script) for a manual run of ``dac7_annual``.
Airflow's own trigger form checks each Param against its JSON schema, one value at a time: the
api-server validates a run's conf with ``SerializedParamsDict.validate()``, which knows no rule
spanning two Params, and a Param class of our own is not what the api-server deserialises. So
the rules that span several Params (``conf_problems`` of ``dags/dac7_support/common.py`` and
``routing_problems`` of ``reporting.pipeline``: the configuration's routing and filing state, the
same functions the ``prepare`` task runs) are checked here, before the run exists:

1. **Check** (POST, ``step=check``): the reporting year, the as-of date and the environment are
   explicit choices (no default; the configuration's environment is shown), the mode, the
   sellers of a deletion, the authorities with their names. A combination that cannot run is
   answered with HTTP 400 and one sentence per problem, the form filled in as it was sent.
   Otherwise a confirmation page says what the run files, in plain words, with the number of
   sellers the filing ledger holds as filed for that year and environment per authority (counted
   in the ledger by one query, no record's content read), and says plainly when the mode files
   corrections or deletions.
2. **Trigger** (POST, ``step=trigger``): everything is checked again, then the run is created as
   the logged-in user (``airflow.api.common.trigger_dag``, the function behind Airflow's CLI;
   triggered by ``ui``, with the user's name as the run's triggering user, exactly as Airflow's
   REST API records it), only if Airflow's auth manager lets the user trigger runs of the DAG
   (``is_authorized_dag`` with method ``POST`` on its runs). The answer links to the run page.

A POST must come from this site (its ``Origin`` is the server's own) or carry a bearer token
(``Authorization: Bearer``, the only scheme Airflow reads), and it must carry the form's token:
an HMAC of the user's Airflow token under the api-server's secret key (``dac7_board.form_token``),
which the form pages hold and a page of another site cannot read. The login is a cookie, so a page
elsewhere must not be able to trigger a filing in the user's name. An API client reads the token
from the form (``GET <prefix>/trigger`` with its bearer token) and posts it as ``csrf_token``.

The POST route is a plain function: FastAPI runs it in its thread pool, since it reads the
configuration and the ledger and creates the run in the metadata database (waiting between
attempts when that database is busy); only reading the request's body happens on the event loop.

Airflow imports every module of the plugins folder in every process: this one imports the
standard library and ``reporting.vocabulary`` (a leaf) only at its top; ``dac7_support`` (from the
DAGs folder) and Airflow's API are imported when a request comes. (No ``from __future__ import
annotations``: FastAPI reads the annotations of the routes defined in ``add_routes``.)
"""

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reporting.vocabulary import PROD, TEST  # a leaf of the standard library

DAG_ID = "dac7_annual"
FORM_FIELDS = ("reporting_year", "as_of", "environment", "mode", "sellers", "authorities", "operator")
#: What the form token is for: the board's token function (``dac7_board.form_token``) over this
#: and the user's Airflow token, so that a token of the board's upload form is not one of this form.
TOKEN_PURPOSE = "dac7-trigger\x00"


def common() -> Any:
    """``dac7_support.common`` of the DAGs folder (the Params, the rules of a combination)."""
    if "dac7_support.common" not in sys.modules:
        from airflow.configuration import conf

        dags = os.path.expanduser(conf.get("core", "dags_folder"))
        if dags not in sys.path:
            sys.path.append(dags)
    import dac7_support.common as c

    return c


@dataclass
class Choice:
    """What the form sent, as typed; ``conf`` is the run's conf once every value is valid."""

    values: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    conf: dict[str, Any] | None = None


def parse_form(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def read_choice(form: Mapping[str, Sequence[str]], *, today: date, config: Any) -> Choice:
    """The run's conf from the form, or the sentences that say what to change. ``today`` is the
    day the run would be created (UTC), ``config`` the configuration (``reporting.config.Config``)
    whose routing and filing state ``prepare`` applies too."""
    from reporting.pipeline import run_problems

    c = common()
    config_environment = config.reporting.environment

    def one(name: str) -> str:
        return (form.get(name) or [""])[0].strip()

    choice = Choice()
    values = choice.values
    problems = choice.problems
    year_text, as_of_text, env, mode = one("reporting_year"), one("as_of"), one("environment"), one("mode") or "auto"
    # the textarea (one id per line), or the check page's hidden fields (one id each)
    sellers = sorted({s.strip() for text in form.get("sellers") or [] for s in text.splitlines() if s.strip()})
    authorities = sorted({a for a in form.get("authorities") or [] if a})
    operator = one("operator")  # a group's run for one operator (empty: every operator)
    values.update(
        reporting_year=year_text,
        as_of=as_of_text,
        environment=env,
        mode=mode,
        sellers=sellers,
        authorities=authorities,
        operator=operator,
    )
    year: int | None = None
    if not year_text:
        problems.append("Choose the reporting year.")
    elif not year_text.isdigit() or not c.FIRST_YEAR <= int(year_text) <= today.year:
        problems.append(f"The reporting year must be a year from {c.FIRST_YEAR} to {today.year}.")
    else:
        year = int(year_text)
    as_of: date | None = None
    if not as_of_text:
        problems.append(
            "Choose the as-of date: 31 December of the reporting year for the year's filing (a later day counts "
            "later refunds and may file corrections)."
        )
    else:
        try:
            as_of = date.fromisoformat(as_of_text)
        except ValueError:
            problems.append(f"The as-of date {as_of_text[:20]!r} is not a date: write it as YYYY-MM-DD.")
    if env not in c.ENVIRONMENTS:
        problems.append(
            f"Choose the environment: 'test' or 'prod' (the configuration file says {config_environment!r})."
        )
    if mode not in c.MODES:
        problems.append(f"The mode must be one of {', '.join(c.MODES)}.")
    if any(len(s) > 200 for s in sellers):
        problems.append("A seller id is at most 200 characters long.")
    unknown = [a for a in authorities if a not in c.EU_STATES]
    if unknown:
        problems.append(f"Not an EU member state: {', '.join(unknown[:5])}.")
    if operator and operator not in config.operator_ids:
        problems.append(f"Choose an operator of the configuration: {', '.join(config.operator_ids)}.")
    if problems or year is None or as_of is None:
        return choice
    problems.extend(
        c.conf_problems(year=year, as_of=as_of, environment=env, mode=mode, sellers=sellers or None, today=today)
    )
    problems.extend(
        run_problems(
            config, environment=env, mode=mode, authorities=authorities, operators=[operator] if operator else None
        )
    )
    if not problems:
        choice.conf = {
            "reporting_year": year,
            "as_of": as_of.isoformat(),
            "environment": env,
            "mode": mode,
            "sellers": sellers or None,
            "authorities": authorities or None,
        }
        if operator:  # the Param operator: one operator of a group alone
            choice.conf["operator"] = operator
    return choice


def form_token(secret: str, session_token: str) -> str:
    """The trigger form's token: ``dac7_board.form_token`` (an HMAC under the api-server's secret
    key) of the user's Airflow token, for this form."""
    from dac7_board import form_token as board_token

    return str(board_token(secret, TOKEN_PURPOSE + session_token))


def token_ok(secret: str, session_token: str | None, sent: str | None) -> bool:
    """Whether ``sent`` is the form token of the Airflow token the request authenticated with."""
    from dac7_board import token_ok as board_token_ok

    return bool(session_token) and bool(board_token_ok(secret, TOKEN_PURPOSE + (session_token or ""), sent))


def token_field(token: str) -> str:
    from dac7_board import TOKEN_FIELD

    return f'<input type="hidden" name="{TOKEN_FIELD}" value="{escape(token)}">'


def what_it_files(conf: Mapping[str, Any], filed: Mapping[str, int]) -> list[str]:
    """The plain sentences of the confirmation page: what the run files, and when it files
    corrections or deletions, how many sellers those concern."""
    year, env, mode = conf["reporting_year"], conf["environment"], conf["mode"]
    total = sum(filed.values())
    where = ", ".join(f"{a}: {n}" for a, n in sorted(filed.items()) if n) or "none"
    lines = [
        f"The ledger holds {total} seller(s) as filed for {year} in the {env} space ({where}).",
    ]
    if mode == "deletion":
        lines.append(
            f"This run files DELETIONS: the filed records of {len(conf['sellers'] or [])} seller(s) named "
            "are withdrawn."
        )
    elif mode == "correction":
        lines.append(f"This run files CORRECTIONS of every seller already filed: {total} seller(s).")
    elif mode == "auto" and total:
        lines.append(
            "This run files the difference to the ledger: new sellers as new records, and CORRECTIONS for those "
            f"of the {total} filed seller(s) whose figures changed (an as-of date later than the last filing's "
            "counts later refunds). The approval request shows how many before anything is published."
        )
    elif mode == "auto":
        lines.append("Nothing is filed for this year yet: every reportable seller is filed as new.")
    elif mode == "new":
        lines.append("This run files every reportable seller as NEW records, whatever the ledger holds.")
    else:
        lines.append("This run files a NIL report: no seller is reportable.")
    if env == PROD:
        lines.append("A production filing is published only after a second person approves it in Airflow.")
    else:
        lines.append("A test run marks every record as test data and files into the ledger's test space.")
    return lines


# ------------------------------------------------------------------------------------------ pages


def form_page(
    choice: Choice,
    *,
    today: date,
    config_environment: str,
    filing_state: str | None,
    may_trigger: bool,
    page: Any,
    token: str = "",
    operators: Sequence[tuple[str, str]] = (),
) -> str:
    """The form; ``operators``: a group's operators, each ``(id, where it files)`` (none: one operator)."""
    c = common()
    v = choice.values
    years = "".join(
        f'<option value="{y}"{" selected" if v.get("reporting_year") == str(y) else ""}>{y}</option>'
        for y in range(c.FIRST_YEAR, today.year + 1)
    )
    envs = "".join(
        f'<label><input type="radio" name="environment" value="{e}" required'
        f"{' checked' if v.get('environment') == e else ''}> {escape(label)}</label><br>"
        for e, label in (
            (TEST, "test: test data, into the ledger's test space"),
            (PROD, "prod: the real filing, published after a second person's approval"),
        )
    )
    modes = "".join(
        f'<option value="{m}"{" selected" if v.get("mode", "auto") == m else ""}>{escape(c.MODE_LABELS[m])}</option>'
        for m in c.MODES
    )
    chosen = set(v.get("authorities") or [])
    authorities = "".join(
        f'<label class="state"><input type="checkbox" name="authorities" value="{a}"'
        f"{' checked' if a in chosen else ''}> {a} {escape(c.AUTHORITY_NAMES[a])}</label>"
        for a in c.EU_STATES
    )
    body = [
        "<h1>Trigger a DAC7 filing run</h1>",
        '<p class="muted"><a href="./">Back to the DAC7 view</a></p>',
        f"<p>The configuration file's environment is <b id=config-environment>{escape(config_environment)}</b>"
        + (f"; the operator files in <b>{escape(filing_state)}</b>" if filing_state and not operators else "")
        + (
            "; a group of operators: "
            + ", ".join(f"{escape(op)} files in <b>{escape(state)}</b>" for op, state in operators)
            if operators
            else ""
        )
        + ". Every choice below is checked before the run is created.</p>",
    ]
    if choice.problems:
        body.append('<div class="problem" id="problems"><b>The run was not created:</b><ul>')
        body += [f"<li>{escape(p)}</li>" for p in choice.problems]
        body.append("</ul></div>")
    if not may_trigger:
        body.append('<p class="problem">Your Airflow login may not trigger runs of dac7_annual.</p>')
    body += [
        '<form method="post" action="trigger" id="trigger-form">',
        '<input type="hidden" name="step" value="check">',
        token_field(token),
        "<p><label><b>Reporting year</b><br>"
        f'<select name="reporting_year" required><option value="">choose a year</option>{years}</select></label>'
        '<br><span class="muted">The calendar year whose sales are reported.</span></p>',
        "<p><label><b>As-of date</b><br>"
        f'<input type="date" name="as_of" required value="{escape(str(v.get("as_of") or ""))}"></label><br>'
        '<span class="muted">Refunds dated after this day are not counted. 31 December of the reporting year for '
        "the year's filing; a later day counts later refunds, and where filed figures change the run files "
        "corrections. It must be a day that has ended.</span></p>",
        f"<fieldset><legend><b>Environment</b></legend>{envs}</fieldset>",
        f'<p><label><b>Filing mode</b><br><select name="mode">{modes}</select></label><br>'
        '<span class="muted">auto files the difference to the ledger. correction and deletion change what was '
        "filed: use them when an authority asks.</span></p>",
        "<p><label><b>Sellers to delete</b> (mode deletion only; one seller id per line)<br>"
        f'<textarea name="sellers" rows="3" cols="40">{escape(chr(10).join(v.get("sellers") or []))}</textarea>'
        "</label></p>",
        f"<fieldset><legend><b>Authorities</b> (empty: where something is due)</legend>{authorities}</fieldset>",
        *(_operator_field(operators, str(v.get("operator") or "")) if operators else []),
        '<p><button type="submit">Check this run</button></p>',
        "</form>",
    ]
    return str(page("Trigger a DAC7 run", body))


def _operator_field(operators: Sequence[tuple[str, str]], chosen: str) -> list[str]:
    """The operator of a group's run: every operator (the default), or one alone (a rerun)."""
    options = '<option value="">every operator of the group</option>' + "".join(
        f'<option value="{escape(op)}"{" selected" if op == chosen else ""}>{escape(op)} (files in '
        f"{escape(state)})</option>"
        for op, state in operators
    )
    return [
        f'<p><label><b>Operator</b><br><select name="operator">{options}</select></label><br>'
        '<span class="muted">One operator of the group alone: a rerun that touches nothing of the other '
        "operators (their files, ledger and statements). A mode other than auto needs one.</span></p>"
    ]


def confirm_page(choice: Choice, sentences: Sequence[str], *, page: Any, token: str = "") -> str:
    conf = choice.conf or {}
    hidden = []
    for key in FORM_FIELDS:
        value = conf.get(key)
        if key == "operator":
            if value:
                hidden.append(f'<input type="hidden" name="operator" value="{escape(str(value))}">')
        elif key == "sellers":
            hidden += [f'<input type="hidden" name="sellers" value="{escape(seller)}">' for seller in value or []]
        elif key == "authorities":
            hidden += [f'<input type="hidden" name="authorities" value="{escape(a)}">' for a in value or []]
        else:
            hidden.append(f'<input type="hidden" name="{key}" value="{escape(str(value))}">')
    labels = {
        "reporting_year": ("Reporting year", ""),
        "as_of": ("As-of date", ""),
        "environment": ("Environment", ""),
        "mode": ("Filing mode", ""),
        "sellers": ("Sellers to delete", "none"),
        "authorities": ("Authorities", "every authority with something due"),
    }
    if "operator" in conf:  # a group's run for one operator
        labels["operator"] = ("Operator", "")
    rows = ""
    for key, (label, empty) in labels.items():
        value = conf.get(key)
        text = ", ".join(value) if isinstance(value, list) else str(value or "")
        rows += f"<tr><th>{escape(label)}</th><td>{escape(text or empty)}</td></tr>"
    body = [
        "<h1>Check the run before it starts</h1>",
        f'<table id="choices">{rows}</table>',
        '<div id="what-it-files">' + "".join(f"<p>{escape(s)}</p>" for s in sentences) + "</div>",
        '<form method="post" action="trigger" id="confirm-form">',
        '<input type="hidden" name="step" value="trigger">',
        token_field(token),
        *hidden,
        '<p><button type="submit">Trigger the run</button> <a href="trigger">Change the choices</a></p>',
        "</form>",
    ]
    return str(page("Check the DAC7 run", body))


def created_page(run_id: str, conf: Mapping[str, Any], *, page: Any) -> str:
    from urllib.parse import quote

    run_href = f"../dags/{DAG_ID}/runs/{quote(run_id, safe='')}"
    body = [
        "<h1>The run was created</h1>",
        f"<p>Run <code id=run-id>{escape(run_id)}</code> of {DAG_ID} for {conf['reporting_year']} "
        f"({escape(conf['environment'])}, as of {escape(conf['as_of'])}, mode {escape(conf['mode'])}).</p>",
        f'<p><a id=run-link target="_top" href="{escape(run_href)}">Open the run in Airflow</a> · '
        f'<a href="{conf["reporting_year"]}/">the DAC7 view of {conf["reporting_year"]}</a></p>',
    ]
    return str(page("DAC7 run created", body))


# ------------------------------------------------------------------------------------------ routes


def count_filed(ledger: Any, environment: str, year: int, operator: str | None = None) -> dict[str, int]:
    """The sellers the ledger holds as filed for a year and environment, per authority (of one
    operator of a group, ``operator``; else of every operator, added up): one counting query
    (``Ledger.filed_sellers``), never a record's content."""
    return {a: n for a, n in ledger.filed_sellers(environment, year, operator_id=operator).items() if n}


def group_operators(config: Any) -> list[tuple[str, str]]:
    """A group's operators (``[operators.ID]`` in the configuration), each with the member state it
    files in; none for a single operator."""
    if not config.operators:
        return []
    return [(op, config.for_operator(op).operator.country) for op in config.operator_ids]


def add_routes(app: Any, view_user: Any) -> None:
    """The trigger page's routes on the view's app; ``view_user`` is the dependency that gives the
    logged-in user who may read the view."""
    from typing import Annotated

    import dac7_view as view
    from fastapi import Depends, Request, status
    from fastapi.responses import HTMLResponse

    def context() -> tuple[date, Any]:
        """Today (UTC) and the configuration (``DAC7_CONFIG``, else the repository's)."""
        from reporting.config import load_config

        c = common()
        config = load_config(os.environ.get("DAC7_CONFIG") or str(c.REPO / "dac7.toml"))
        return datetime.now(UTC).date(), config

    def may_trigger(user: Any) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

        return bool(
            get_auth_manager().is_authorized_dag(
                method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=DAG_ID), user=user
            )
        )

    def filed_sellers(environment: str, year: int, operator: str | None = None) -> dict[str, int]:
        src = view.sources()
        if not src.ledger_url:
            return {}
        try:
            return dict(
                view._read_ledger(src.ledger_url, lambda ledger: count_filed(ledger, environment, year, operator))
            )
        except view.LedgerUnavailable:
            return {}

    def same_site(request: Request) -> bool:
        """A bearer token (an API client: Airflow reads ``Authorization`` only with the scheme
        ``Bearer``), or a form of this site: its Origin (else Referer) is the address the request
        was sent to, or ``[api] base_url``'s (behind a proxy)."""
        from airflow.configuration import conf

        if request.headers.get("authorization", "")[:7].lower() == "bearer ":
            return True
        origin = urlsplit(request.headers.get("origin") or request.headers.get("referer") or "").netloc
        ours = {request.headers.get("host"), urlsplit(conf.get("api", "base_url", fallback="") or "").netloc}
        return bool(origin) and origin in ours

    def secret() -> str:
        from airflow.api_fastapi.auth.tokens import get_signing_key

        return str(get_signing_key("api", "secret_key"))

    def session(request: Request) -> str | None:
        """The Airflow token the request authenticated with (``dac7_board.session_token``)."""
        from dac7_board import session_token

        return session_token(request.headers, request.cookies)

    def refused(text: str) -> HTMLResponse:
        return HTMLResponse(view.error_page(403, "Forbidden", text), status_code=status.HTTP_403_FORBIDDEN)

    User = Annotated[Any, Depends(view_user)]

    @app.get("/trigger", response_class=HTMLResponse)
    def trigger_form(request: Request, user: User) -> HTMLResponse:
        today, config = context()
        page = form_page(
            Choice(),
            today=today,
            config_environment=config.reporting.environment,
            filing_state=config.operator.country,
            may_trigger=may_trigger(user),
            page=view._page,
            token=form_token(secret(), session(request) or ""),
            operators=group_operators(config),
        )
        return HTMLResponse(page)

    async def body_of(request: Request) -> bytes:
        return await request.body()

    @app.post("/trigger", response_class=HTMLResponse)
    def trigger_post(user: User, request: Request, body: Annotated[bytes, Depends(body_of)]) -> HTMLResponse:
        """A plain function: FastAPI runs it in its thread pool, so that reading the
        configuration and the ledger, and creating the run in the metadata database (with its
        pauses between attempts), never holds the api-server's event loop."""
        from dac7_board import TOKEN_FIELD

        if not same_site(request):
            return refused("A run is triggered from the DAC7 trigger page itself, or by an API client with a token.")
        form = parse_form(body)
        key, login = secret(), session(request)
        if not token_ok(key, login, (form.get(TOKEN_FIELD) or [""])[0]):
            return refused(
                "The form has expired or was not made for your login (your login was renewed, or the form came "
                "from elsewhere): no run was created. Open the DAC7 trigger page again and repeat your choices."
            )
        token = form_token(key, login or "")
        today, config = context()
        env, state = config.reporting.environment, config.operator.country
        choice = read_choice(form, today=today, config=config)
        allowed = may_trigger(user)

        def refused_form() -> HTMLResponse:
            """The form again, with the choices made and the sentences of what was refused."""
            page = form_page(
                choice,
                today=today,
                config_environment=env,
                filing_state=state,
                may_trigger=allowed,
                page=view._page,
                token=token,
                operators=group_operators(config),
            )
            return HTMLResponse(page, status_code=status.HTTP_400_BAD_REQUEST)

        if choice.conf is None:
            return refused_form()
        if (form.get("step") or [""])[0] != "trigger":
            filed = filed_sellers(
                choice.conf["environment"], choice.conf["reporting_year"], choice.conf.get("operator")
            )
            return HTMLResponse(confirm_page(choice, what_it_files(choice.conf, filed), page=view._page, token=token))
        if not allowed:
            return refused("Your Airflow login may not trigger runs of dac7_annual.")
        run_id = trigger(choice.conf, user.get_name())
        if run_id is None:
            choice.problems.append("Airflow refused the run: its Params did not validate.")
            return refused_form()
        return HTMLResponse(created_page(run_id, choice.conf, page=view._page), status_code=status.HTTP_201_CREATED)

    def trigger(conf: dict[str, Any], user_name: str) -> str | None:
        """The new run's id; None when Airflow refused the Params. A metadata database that is
        busy (SQLite, locked by the scheduler for a moment) is tried again, three times in all."""
        import time

        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.exceptions import ParamValidationError
        from airflow.utils.types import DagRunTriggeredByType
        from sqlalchemy.exc import OperationalError

        for attempt in range(3):
            try:
                run = trigger_dag(
                    DAG_ID, triggered_by=DagRunTriggeredByType.UI, triggering_user_name=user_name, conf=conf
                )
            except (ParamValidationError, ValueError):
                return None
            except OperationalError:
                if attempt == 2:
                    raise
                time.sleep(1 + attempt)
                continue
            return str(run.run_id) if run is not None else None
        return None
