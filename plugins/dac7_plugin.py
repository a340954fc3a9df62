"""The DAC7 view in the Airflow UI: filings, the latest run and its files, for compliance staff.

An Airflow 3 plugin: a FastAPI app that the api-server mounts under ``/dac7``, and an external
view that puts it in the UI's navigation (shown in an iframe, so the page keeps Airflow's menu).
What the pages show and where it comes from: ``dac7_view.py``.

Authentication is Airflow's own. Every route of the app depends on ``require_view_access``, which
takes the user from Airflow's JWT exactly as the REST API does (``get_user`` of
``airflow.api_fastapi.core_api.security``: the ``Authorization: Bearer`` header, else the ``_token``
cookie that the UI sets at login; the configured auth manager checks the token's signature, expiry
and revocation), then asks that auth manager whether the user may read the custom view ``DAC7``
(``is_authorized_custom_view``: the simple auth manager grants it to every role from VIEWER up;
FAB or Keycloak to whom their admin gives it). Without a valid token the answer is 401, with a
forged token or without the permission 403, before anything is read. The interactive API docs are
off: they would be routes outside that dependency.

Routes, under the mount point:

- ``/``: the years with filings or a published run, production and test apart
  (``?environment=prod&authority=DE&status=partially rejected`` filter);
- ``/{year}/``: the ledger's filings of a year, the latest production run and the latest test
  run (each with its files, reports and due diligence) and the earlier runs
  (``?authority=DE`` for one authority);
- ``/{year}/due-diligence``: the due-diligence list of a run, sorted and filtered by query
  parameters; ``/{year}/due-diligence.csv`` the same rows as CSV (download permission);
- ``/{year}/sellers``: the seller search (``?q=`` an exact seller id opens the seller; the beginning
  of an id lists at most 50 sellers), and ``/{year}/sellers/{seller_id}``: one seller's decision,
  figures, identity (masked without the download permission) and filings (``dac7_seller.py``);
- ``/runs``: the latest runs of the DAC7 DAGs in Airflow (failed runs, approvals waiting, the
  answers the approval step refused, each run's outcome): ``dac7_runs.py``;
- ``/board``: the deadline and status board per authority and year, with the upload form of
  status documents (``POST /status-import``): ``dac7_board.py``;
- ``/{year}/files/{path}``: a file of the year's output, only those that a kept run lists, those
  under its ``reports/``, and every message the ledger records as published or answered for that
  year (``dac7_view.reachable_file``); XML, CSV and Parquet download, HTML reports open in the
  browser;
- ``/pending/{run}/`` and ``/pending/{run}/{path}``: the rendered files of a run waiting for
  approval (``dac7_pending.py``);
- ``/{year}/filings``: every filing's state (rendered, approved, uploaded or transmitted, the
  answer) with who acted and when, the outbox checklists and *Mark uploaded* (``POST
  /{year}/filings``, the status-import permission): ``dac7_filings.py``;
- ``/{year}/statements`` and ``/{year}/statements/{statement_id}``: the seller statements of a
  year with their delivery status, and a statement's page (download permission):
  ``dac7_statements.py``;
- ``/attention``: the due-diligence desk: the sellers that need attention (what they lack, the
  actions due and the next one with its date, ``?country=&action=&operator=``) and the counts per
  stage; ``/attention.csv`` the same list as formula-safe CSV (download permission):
  ``dac7_attention.py``. A seller's due-diligence history is on its seller page (download
  permission).

Airflow imports this module in every process (scheduler, dag-processor, triggerer, task runners),
so its top level imports only the plugin base class: the app is built on the first request, in the
api-server, with FastAPI, Airflow's API security and ``dac7_view`` (imported by name: the plugin
loader has loaded it from the plugins folder, which is on ``sys.path`` too). No ``from __future__
import annotations`` here: FastAPI reads the annotations of the routes defined in ``create_app``.
"""

import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, ClassVar
from urllib.parse import quote, urlsplit

from airflow.plugins_manager import AirflowPlugin

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

URL_PREFIX = "/dac7"
#: The resource name that auth managers see for this view (``is_authorized_custom_view``).
RESOURCE_NAME = "DAC7"
#: The resource that lets a user download filings and seller-level reports (FAB, Keycloak: grant
#: ``GET`` on it; the simple auth manager: the roles in DOWNLOAD_ROLES).
DOWNLOAD_RESOURCE = "DAC7 downloads"
DOWNLOAD_ROLES = frozenset({"OP", "ADMIN"})
#: Files of a year that hold no personal data and no seller-level figure: open to every user of
#: the view (the run summary's totals and charts, the Data Docs without values).
OPEN_TO_VIEWERS = ("reports/run_summary.html", "reports/data-docs/")
#: Every page and file of the view: nothing but itself (no script at all, no remote style or
#: font), framed only by Airflow's UI.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
#: Served to open in the browser (reports, Data Docs pages and their assets); the rest downloads.
INLINE = {".html", ".htm", ".css", ".js", ".png", ".svg", ".ico", ".gif", ".jpg", ".woff", ".woff2", ".ttf"}
AUTHORITY = re.compile(r"^[A-Z]{2}$")
#: a kept run's summary page (``runs/<run>/reports/run_summary.html``): open like the latest's
KEPT_SUMMARY = re.compile(r"^runs/[A-Za-z0-9_-][A-Za-z0-9._-]*/reports/run_summary\.html$")
log = logging.getLogger("dac7.view")


def create_app() -> Any:
    """The view's FastAPI app: every route behind Airflow's login and the ``DAC7`` permission."""
    import dac7_view as view
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from airflow.api_fastapi.core_api.security import GetUserDep
    from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, status
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def require_view_access(user: GetUserDep) -> BaseUser:
        """The logged-in Airflow user, if the auth manager lets them read this view; else 403."""
        if not get_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE_NAME, user=user):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not read the {RESOURCE_NAME} view")
        return user

    ViewUser = Annotated[BaseUser, Depends(require_view_access)]

    app = FastAPI(
        title="DAC7 filings",
        dependencies=[Depends(require_view_access)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    import dac7_trigger  # the trigger page that checks a run's Params before it exists

    dac7_trigger.add_routes(app, require_view_access)

    @app.exception_handler(StarletteHTTPException)
    def error_page(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        """Errors as a small page; a 401 links to the login (the status code stays)."""
        login = None
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            title, text = "Not logged in", "The DAC7 view is for users logged in to Airflow."
            login = get_auth_manager().get_url_login(next_url=str(request.url))
        elif exc.status_code == status.HTTP_403_FORBIDDEN and exc.detail == DOWNLOAD_REFUSED:
            title, text = "Forbidden", DOWNLOAD_REFUSED
        elif exc.status_code == status.HTTP_403_FORBIDDEN:
            title, text = "Forbidden", "Your Airflow login does not give access to the DAC7 view, or is not valid."
        else:
            title, text = "Error", str(exc.detail)
        page = view.error_page(exc.status_code, title, text, login)
        return HTMLResponse(page, status_code=exc.status_code, headers=exc.headers)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        # The pages and files hold filing data, the XML personal data: never cached.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    Year = Annotated[int, Path(ge=2023, le=2100, description="the reporting year")]

    Filter = Annotated[str | None, Query(max_length=40)]

    @app.get("/", response_class=HTMLResponse)
    def index(environment: Filter = None, authority: Filter = None, status: Filter = None) -> HTMLResponse:
        src = view.sources()
        chosen = {
            "environment": environment if environment in view.ENVIRONMENTS else None,
            "authority": authority if authority and AUTHORITY.match(authority) else None,
            "status": status if status in view.STATUSES else None,
        }
        years, problems = view.overview(src, **chosen)
        page = view.index_page(years, [*src.problems, *problems], choices=view.overview_choices(src), chosen=chosen)
        return HTMLResponse(page)

    @app.get("/{year}/", response_class=HTMLResponse)
    def year_page(
        year: Year, user: ViewUser, authority: Annotated[str | None, Query(max_length=2)] = None
    ) -> HTMLResponse:
        chosen = authority if authority and AUTHORITY.match(authority) else None
        page = view.year_page(view.year_view(view.sources(), year), chosen, may_download=may_download(user))
        return HTMLResponse(page)

    def due_diligence_query(
        run: Filter = None,
        kind: Filter = None,
        authority: Filter = None,
        country: Filter = None,
        identifier: Filter = None,
        q: Filter = None,
        sort: Filter = None,
        order: Filter = None,
        page: Filter = None,
    ) -> Any:
        """The list's query parameters; a value the list does not know is ignored."""
        return view.DueDiligenceQuery(
            run=run if run in view.ENVIRONMENTS else None,
            kind=kind or None,
            authority=authority if authority and AUTHORITY.match(authority) else None,
            country=country or None,
            identifier=identifier or None,
            q=q or None,
            sort=sort if sort in view.DD_SORTABLE else "seller_id",
            desc=order == "desc",
            page=int(page) if page and page.isdigit() and len(page) < 7 else 1,
        )

    DueDiligenceQuery = Annotated[Any, Depends(due_diligence_query)]

    @app.get("/{year}/due-diligence", response_class=HTMLResponse)
    def due_diligence(year: Year, user: ViewUser, query: DueDiligenceQuery) -> HTMLResponse:
        run, found, problems = view.due_diligence_findings(view.sources(), year, query)
        page = view.due_diligence_page(
            year,
            run,
            found.rows,
            query,
            problems,
            may_download=may_download(user),
            total=found.total,
            options=found.options,
        )
        return HTMLResponse(page)

    @app.get("/{year}/due-diligence.csv")
    def due_diligence_csv(year: Year, user: ViewUser, query: DueDiligenceQuery) -> Response:
        if not may_download(user):
            log.warning(
                "DAC7 download refused: user %s may not export the due-diligence list of %s", user.get_name(), year
            )
            raise HTTPException(status.HTTP_403_FORBIDDEN, DOWNLOAD_REFUSED)
        run, found, problems = view.due_diligence_findings(view.sources(), year, query)
        if run is None or (problems and not found.total):
            raise HTTPException(status.HTTP_404_NOT_FOUND, " ".join(problems) or "No due-diligence list for this year.")
        chosen = found.rows  # every finding that passes the filters, whatever the page
        log.info(
            "DAC7 export by %s: due-diligence list of %s, run %s, %d of %d row(s)",
            user.get_name(),
            year,
            run.run_id,
            len(chosen),
            found.total,
        )
        name = f"due_diligence_{year}_{run.environment}.csv"
        return Response(
            view.findings_csv(chosen, masked_values=True),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/{year}/sellers", response_class=HTMLResponse)
    def seller_search(year: Year, q: str | None = None, environment: Filter = None) -> Response:
        import dac7_seller as seller

        if q is None:
            src = view.sources()
            year_dir = src.year_dir(year)
            run = seller.shown_run(year_dir, environment)[0] if year_dir is not None else None
            return HTMLResponse(seller.search_page(year, None, run=run))
        result = seller.search(view.sources(), year, q, environment)
        if result.exact:  # the exact id: its page (relative to <prefix>/<year>/sellers)
            suffix = f"?environment={result.run.environment}" if result.run and result.run.asked else ""
            return RedirectResponse("sellers/" + quote(q, safe="") + suffix, status_code=status.HTTP_303_SEE_OTHER)
        page = seller.search_page(year, result)
        code = status.HTTP_400_BAD_REQUEST if result.invalid else status.HTTP_200_OK
        return HTMLResponse(page, status_code=code)

    @app.get("/{year}/sellers/{seller_id:path}", response_class=HTMLResponse, response_model=None)
    def seller_page(
        year: Year, seller_id: str, user: ViewUser, request: Request, environment: Filter = None
    ) -> Response:
        import dac7_seller as seller

        from reporting.explain import seller_id_problem

        problem = seller_id_problem(seller_id)
        if problem:
            return HTMLResponse(seller.invalid_page(year, problem), status_code=status.HTTP_400_BAD_REQUEST)
        canonical = seller.canonical_href(request.scope.get("raw_path") or b"", seller_id, environment)
        if canonical is not None:  # a "/" of the id unquoted in the address: the page's links need it quoted
            return RedirectResponse(canonical, status_code=status.HTTP_308_PERMANENT_REDIRECT)
        personal = may_download(user)
        found = seller.seller_view(view.sources(), year, seller_id, environment, diligence=personal)
        if personal and found.reading is not None and found.reading.identity is not None:
            # who saw whose personal data: the audit trail, as for downloads (the seller id only)
            log.info("DAC7 seller page with personal data for %s: %s/%s", user.get_name(), year, seller_id[:200])
        if found.diligence is not None:
            log.info("DAC7 due-diligence history shown to %s: %s", user.get_name(), seller_id[:200])
        missing = found.reading is None and not found.filings and not found.diligence_exists
        return HTMLResponse(
            seller.seller_page(found, may_see_personal_data=personal),
            status_code=status.HTTP_404_NOT_FOUND if missing else status.HTTP_200_OK,
        )

    @app.get("/{year}/files/{path:path}")
    def download(year: Year, path: str, user: ViewUser) -> FileResponse:
        if not open_to_viewers(path) and not may_download(user):
            log.warning("DAC7 download refused: user %s may not download %s/%s", user.get_name(), year, path[:200])
            raise HTTPException(status.HTTP_403_FORBIDDEN, DOWNLOAD_REFUSED)
        # any file of a kept run, and any message the ledger records as published or answered,
        # whatever run came after and of either environment
        target = view.reachable_file(view.sources(), year, path)
        if target is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such file in the published output of this year.")
        # every download, by whom and of which bytes: the audit trail of who took personal data away
        from reporting.files import file_sha256

        log.info("DAC7 download by %s: %s/%s sha256 %s", user.get_name(), year, path, file_sha256(target))
        suffix = target.suffix.lower()
        media_type = "application/xml" if suffix == ".xml" else mimetypes.guess_type(target.name)[0]
        return FileResponse(
            target,
            media_type=media_type or "application/octet-stream",
            filename=target.name,
            content_disposition_type="inline" if suffix in INLINE else "attachment",
        )

    @app.get("/board", response_class=HTMLResponse)
    def board(request: Request, user: ViewUser) -> HTMLResponse:
        """The deadline and status board, with the upload form for those who may import."""
        import dac7_board

        allowed = may_import(user)
        token = request_token(request) if allowed else None
        page = dac7_board.board_page(dac7_board.board_view(view.sources()), token=token, may_import=allowed)
        return HTMLResponse(page)

    @app.post("/status-import", response_class=HTMLResponse)
    async def status_import(request: Request, user: ViewUser) -> HTMLResponse:
        """An authority's status document uploaded from the board (``dac7_board.status_import``)."""
        import dac7_board
        from airflow.api_fastapi.auth.tokens import get_signing_key
        from airflow.configuration import conf

        base = urlsplit(conf.get("api", "base_url", fallback="") or "").netloc
        status_code, page = await dac7_board.status_import(
            request,
            user.get_name(),
            allowed=may_import(user),
            secret=get_signing_key("api", "secret_key"),
            hosts=[base],
        )
        return HTMLResponse(page, status_code=status_code)

    def request_token(request: Request) -> str:
        """The upload form's token for the Airflow token this request came with."""
        import dac7_board
        from airflow.api_fastapi.auth.tokens import get_signing_key

        session = dac7_board.session_token(request.headers, request.cookies) or ""
        return dac7_board.form_token(get_signing_key("api", "secret_key"), session)

    def may_import(user: BaseUser) -> bool:
        """Whether the user may import status documents: the simple auth manager's roles in
        IMPORT_ROLES; any other auth manager, ``GET`` on IMPORT_RESOURCE (``dac7_board``)."""
        from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
        from dac7_board import IMPORT_RESOURCE, IMPORT_ROLES

        manager = get_auth_manager()
        if isinstance(manager, SimpleAuthManager):
            return (getattr(user, "role", None) or "").upper() in IMPORT_ROLES
        return bool(manager.is_authorized_custom_view(method="GET", resource_name=IMPORT_RESOURCE, user=user))

    def may_download(user: BaseUser) -> bool:
        """Whether the user may download filings and seller-level reports: the simple auth
        manager's roles in DOWNLOAD_ROLES; any other auth manager, ``GET`` on DOWNLOAD_RESOURCE."""
        from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

        manager = get_auth_manager()
        if isinstance(manager, SimpleAuthManager):
            role = (getattr(user, "role", None) or "").upper()
            return role in DOWNLOAD_ROLES
        return bool(manager.is_authorized_custom_view(method="GET", resource_name=DOWNLOAD_RESOURCE, user=user))

    # the pending (rendered, not yet published) files of a run waiting for approval: dac7_pending.py
    import dac7_pending

    dac7_pending.add_routes(app, ViewUser, may_download, DOWNLOAD_REFUSED)

    # the seller statements of a year and each statement's page: dac7_statements.py
    import dac7_statements

    dac7_statements.add_routes(app, ViewUser, may_download, DOWNLOAD_REFUSED)

    # every filing's state with who acted and when, the outbox checklists, "mark uploaded": dac7_filings.py
    import dac7_filings

    def own_hosts() -> list[str]:
        from airflow.configuration import conf

        return [urlsplit(conf.get("api", "base_url", fallback="") or "").netloc]

    def signing_key() -> str:
        from airflow.api_fastapi.auth.tokens import get_signing_key

        return str(get_signing_key("api", "secret_key"))

    dac7_filings.add_routes(app, ViewUser, may_import, own_hosts, signing_key)

    # the DAC7 runs in Airflow: failed runs, approvals waiting, refused answers: dac7_runs.py
    import dac7_runs

    dac7_runs.add_routes(app, ViewUser)

    # the due-diligence desk: the sellers that need attention, the counts per stage, the CSV
    import dac7_attention

    dac7_attention.add_routes(app, ViewUser, may_download, DOWNLOAD_REFUSED)

    return app


def open_to_viewers(path: str) -> bool:
    """Whether a file of a year is open to every user of the view (no personal data, no
    seller-level figure): the run summaries and the Data Docs without values."""
    return path.startswith(OPEN_TO_VIEWERS) or bool(KEPT_SUMMARY.match(path))


DOWNLOAD_REFUSED = (
    "Your Airflow login may see the DAC7 statuses and counts, but not download filings or seller-level "
    f"reports: that needs the {DOWNLOAD_RESOURCE!r} permission (with Airflow's simple auth manager, the role "
    "op or admin)."
)


class LazyDac7App:
    """An ASGI app that builds the view's app on its first request, then passes every request to
    it. (Two first requests at once may both build it: that does no harm.)"""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


class Dac7Plugin(AirflowPlugin):
    name = "dac7"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": LazyDac7App(), "url_prefix": URL_PREFIX, "name": "DAC7 filings"},
    ]
    # A relative href (no leading slash): the UI resolves it against its base URL, so the view
    # also works when Airflow is served under a path ([api] base_url).
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "DAC7",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "url_route": "dac7",
            "nav_top_level": True,
        }
    ]
