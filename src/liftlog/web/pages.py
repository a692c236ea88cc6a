"""The web pages under ``/ui``: sign-in, projects, experiments, results, the event debugger.

Server-rendered HTML (Jinja2, autoescaped) over the same computation as the results API
(`liftlog.api.reports.Reports`): a page never computes a number the API would not return.
Pages need a signed-in user (`liftlog user create`); a user sees the projects of their account.
Everything is served from here — CSS, charts (inline SVG) — so the pages work with no network
and no JavaScript.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from liftlog.api.results import ResultsAPI
from liftlog.catalog.models import Experiment, Project
from liftlog.catalog.repo import is_id_text
from liftlog.catalog.store import Catalog
from liftlog.catalog.users import User, Users
from liftlog.errors import (
    InvalidInput,
    LiftlogError,
    NotFound,
    PayloadTooLarge,
    Problem,
    Unauthorized,
)
from liftlog.methods import METHODS
from liftlog.settings import Settings
from liftlog.web import views
from liftlog.web.session import Session, Sessions, csrf_ok, load_secret
from liftlog.web.throttle import PER_ADDRESS, PER_EMAIL, Throttle

HERE = Path(__file__).parent
MAX_FORM_BYTES = 16 * 1024
Handler = Callable[[Request], Awaitable[Response]]
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _int(raw: str | None, name: str) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    if not is_id_text(raw.strip()):
        raise InvalidInput(f"{name} must be a number", [Problem(name, "not an integer")])
    return int(raw)


class WebPages:
    def __init__(
        self,
        settings: Settings,
        catalog: Callable[[], Catalog],
        api: ResultsAPI,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.clock = clock
        self.api = api
        self.throttle = Throttle()
        self._sessions: Sessions | None = None
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def mount(self) -> Mount:
        page = self._page
        return Mount(
            "/ui",
            routes=[
                Route("/", page(self.home)),
                Route("/signin", page(self.signin_form), methods=["GET"]),
                Route("/signin", page(self.signin), methods=["POST"]),
                Route("/signout", page(self.signout), methods=["POST"]),
                Route("/projects", page(self.projects)),
                Route("/projects/{project_id:int}", page(self.experiments)),
                Route("/experiments/{experiment_id:int}", page(self.results)),
                Route("/experiments/{experiment_id:int}/results.csv", page(self.csv)),
                Route("/debugger", page(self.debugger)),
                Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            ],
        )

    @property
    def sessions(self) -> Sessions:
        # The secret is read on first use, not at import: the data directory may not exist yet.
        if self._sessions is None:
            self._sessions = Sessions(load_secret(self.settings.data_dir), self.clock)
        return self._sessions

    # Plumbing: rendering, errors, who is signed in.

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        session: Session | None = request.state.session
        body = self.templates.get_template(name).render(
            request=request, csrf=session.csrf if session else "", user=request.state.user,
            **context,
        )  # fmt: skip
        return HTMLResponse(body, status, SECURITY_HEADERS)

    def _page(self, handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            session = self.sessions.read(request)
            fresh = session is None
            if session is None:
                session = self.sessions.new()
            request.state.session = session
            request.state.user = None
            try:
                if session.user_id is not None:
                    request.state.user = await run_in_threadpool(self._signed_in, session)
                    if request.state.user is not None:
                        # Signed in before this process started (a restart): results pages
                        # will likely follow, as after a sign-in.
                        self.api.import_soon()
                response = await handler(request)
            except _SignInFirst:
                response = signin_redirect(request)
            except LiftlogError as exc:
                response = self.render(request, "error.html", exc.status, error=exc)
            if fresh:
                self.sessions.write(response, session, secure=request.url.scheme == "https")
            return response

        return wrapped

    def signed_in(self, request: Request) -> tuple[User, str] | None:
        """The user of the request's session cookie and the session's CSRF token, or None.

        For pages outside /ui that act for a signed-in user (the OAuth consent page)."""
        session = self.sessions.read(request)
        if session is None or session.user_id is None:
            return None
        user = self._signed_in(session)
        return None if user is None else (user, session.csrf)

    def _signed_in(self, session: Session) -> User | None:
        """The session's user, unless deleted or given a new password since it signed in."""
        if session.user_id is None:
            return None
        try:
            user = Users.of(self.catalog()).get(session.user_id)
        except NotFound:
            return None
        return user if user.stamp == session.stamp else None

    def _user(self, request: Request) -> User:
        user: User | None = request.state.user
        if user is None:
            raise _SignInFirst
        return user

    def _project(self, user: User, project_id: int) -> Project:
        project = self.catalog().projects.get(project_id)
        if project.account_id != user.account_id:  # others' projects do not exist for you
            raise NotFound(f"project {project_id} not found")
        return project

    def _experiment(self, user: User, experiment_id: int) -> tuple[Experiment, Project]:
        experiment = self.catalog().experiments.get(experiment_id)
        return experiment, self._project(user, experiment.project_id)

    # Sign-in.

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/ui/projects", 303)

    async def signin_form(self, request: Request) -> Response:
        return self.render(request, "signin.html", next=_safe_next(request.query_params))

    async def signin(self, request: Request) -> Response:
        form = await _form(request)
        if not csrf_ok(request.state.session, form.get("csrf")):
            raise _CsrfFailed
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        address = request.client.host if request.client else ""
        keys = {f"email:{email.strip().lower()}": PER_EMAIL, f"address:{address}": PER_ADDRESS}
        wait = self.throttle.retry_after(keys)
        if wait:
            response = self.render(
                request, "signin.html", 429, next=_safe_next(form), email=email,
                failed=f"Too many failed sign-ins for this email or from this address. "
                f"Try again in {-(-wait // 60)} minute(s).",
            )  # fmt: skip
            response.headers["Retry-After"] = str(wait)
            return response
        users = Users.of(self.catalog())
        try:
            user = await run_in_threadpool(users.authenticate, email, password)
        except Unauthorized:
            self.throttle.failed(*keys)
            return self.render(
                request, "signin.html", 401, next=_safe_next(form), email=email,
                failed="Wrong email or password.",
            )  # fmt: skip
        self.throttle.clear(next(iter(keys)))
        self.api.import_soon()
        response = RedirectResponse(_safe_next(form), 303)
        self.sessions.write(
            response, self.sessions.new(user.id, user.stamp), secure=_secure(request)
        )
        return response

    async def signout(self, request: Request) -> Response:
        form = await _form(request)
        if not csrf_ok(request.state.session, form.get("csrf")):
            raise _CsrfFailed
        response = RedirectResponse("/ui/signin", 303)
        self.sessions.write(response, self.sessions.new(), secure=_secure(request))
        return response

    # Projects and experiments.

    async def projects(self, request: Request) -> Response:
        user = self._user(request)
        page = self.catalog().projects.list(1, 100, account_id=user.account_id)
        return self.render(request, "projects.html", projects=page.items)

    async def experiments(self, request: Request) -> Response:
        user = self._user(request)
        project = self._project(user, int(request.path_params["project_id"]))

        def compute() -> list[dict[str, Any]]:
            found = self.catalog().experiments.list(project.id, 1, 100).items
            rows = []
            reports = self.api.reports
            now = datetime.fromtimestamp(self.clock(), UTC)
            for e in found:
                doc = reports.overview(e.id)
                rows.append(
                    {"experiment": e, "days": views.days_running(doc, now),
                     "visitors": doc["reach"]["total_count"], "verdict": views.verdict(doc)}
                )  # fmt: skip
            return rows

        rows = await run_in_threadpool(compute)
        return self.render(request, "experiments.html", project=project, rows=rows)

    def _params(self, request: Request) -> dict[str, str]:
        q = request.query_params
        params = {"method": q.get("method") or "sequential", "segment": q.get("segment") or ""}
        if params["method"] not in METHODS:
            raise InvalidInput("unknown method", [Problem("method", "not a method")])
        return params

    async def results(self, request: Request) -> Response:
        user = self._user(request)
        experiment, project = self._experiment(user, int(request.path_params["experiment_id"]))
        params = self._params(request)

        doc, series = await run_in_threadpool(
            lambda: self.api.reports.page(
                experiment.id, params["method"], params["segment"] or None
            )
        )
        names = {vid: v["name"] for vid, v in doc["reach"]["variations"].items()}
        charts = []
        if series is not None:
            charts = [
                views.improvement_chart(series, names),
                views.visitors_chart(series, names),
            ]
        segments = [(s["value"], views.metric_tables(s)) for s in doc.get("segments", [])]
        attribute_keys = self._attribute_keys(project.id)
        if params["segment"] and params["segment"] not in attribute_keys:
            attribute_keys.append(params["segment"])  # an attribute id, say, from a shared link
        return self.render(
            request, "results.html", experiment=experiment, project=project, doc=doc,
            params=params, methods=METHODS, tables=views.metric_tables(doc), charts=charts,
            segments=segments, csv_query=urlencode(params), attribute_keys=attribute_keys,
            data_line=views.freshness_line(doc["freshness"]),
        )  # fmt: skip

    def _attribute_keys(self, project_id: int) -> list[str]:
        keys, page, attributes = [], 1, self.catalog().attributes
        while True:
            found = attributes.list(project_id, page, 100)
            keys += [a.key for a in found.items if not a.archived]
            if page >= found.last_page:
                return keys
            page += 1

    async def csv(self, request: Request) -> Response:
        user = self._user(request)
        experiment, _ = self._experiment(user, int(request.path_params["experiment_id"]))
        params = self._params(request)
        doc = await run_in_threadpool(
            lambda: self.api.reports.results(
                experiment.id, params["method"], params["segment"] or None
            )
        )
        text = self.api.reports.csv(doc)
        disposition = f'attachment; filename="experiment-{experiment.id}.csv"'
        return Response(
            text, media_type="text/csv",
            headers={**SECURITY_HEADERS, "content-disposition": disposition},
        )  # fmt: skip

    # The event debugger.

    async def debugger(self, request: Request) -> Response:
        """A visitor's (or an event uuid's visitors') timeline, per experiment.

        With ``experiment``, how the events count in that experiment. Without, in each of the
        user's experiments that decided the visitor (a decision or a legacy ``x`` pair names it).
        """
        user = self._user(request)
        q = (request.query_params.get("q") or "").strip()
        experiment_id = _int(request.query_params.get("experiment"), "experiment")
        experiment = None
        if experiment_id is not None:
            experiment, _ = self._experiment(user, experiment_id)
        timelines: list[tuple[Experiment, list[dict[str, Any]], int]] = []
        rejected: list[Any] = []
        if q:
            timelines, rejected = await run_in_threadpool(self._timelines, user, experiment, q)
        return self.render(
            request, "debugger.html", q=q, experiment=experiment, timelines=timelines,
            rejected=rejected, searched=bool(q),
        )  # fmt: skip

    def _timelines(
        self, user: User, experiment: Experiment | None, q: str
    ) -> tuple[list[tuple[Experiment, list[dict[str, Any]], int]], list[Any]]:
        """The visitor `q`'s events, or, if `q` is an event uuid, its visitors' events, as they
        count in `experiment` or in each of the user's experiments that decided them."""
        reports = self.api.reports
        visitors, named, rejected = reports.searched(q)
        if experiment is not None:
            chosen = [experiment]
        else:
            chosen = [found for i in sorted(named, key=_numeric) if (found := self._own(user, i))]
        timelines = [(exp, *reports.judged(visitors, exp.id)) for exp in chosen]
        return timelines, rejected

    def _own(self, user: User, experiment_id: str) -> Experiment | None:
        """The experiment with this id if it is the user's, else None (others' do not exist)."""
        if not is_id_text(experiment_id):
            return None
        try:
            experiment, _ = self._experiment(user, int(experiment_id))
        except NotFound:
            return None
        return experiment


def _numeric(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (0, text)


class _SignInFirst(Unauthorized):
    def __init__(self) -> None:
        super().__init__("Sign in first.")


class _CsrfFailed(LiftlogError):
    status = 403
    code = "csrf_failed"

    def __init__(self) -> None:
        super().__init__("The form was stale or not sent from this site; reload and try again.")


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the only kind these pages send), at most 16 KiB.

    Parsed here rather than with `request.form()`, which needs python-multipart for no gain.
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"a form is at most {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(params: Any) -> str:
    """Where to go after signing in: a page of this site's /ui, or back to the OAuth consent
    page that sent the user to sign in; never another origin."""
    target = str(params.get("next") or "/ui/projects")
    if not target.startswith(("/ui/", "/oauth/authorize?")) or "\\" in target:
        return "/ui/projects"
    return target


def signin_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/ui/signin?next=" + quote(target, safe=""), 303)
