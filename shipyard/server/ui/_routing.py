"""How a UI route is declared: pages, JSON data for charts, and actions, each with its auth action.

A UI module creates a :class:`UiRouter` and decorates plain, synchronous functions; they run in
a worker thread (the stores block), return what the template or the chart needs, and never hold
business logic: they call the same services the API calls, through the workspace::

    router = UiRouter()

    @router.page("/runs/{run_id}", "run.html", resource="run", resource_param="run_id")
    def run_page(request: Request, ws: Workspace) -> dict[str, Any]:
        return {"run": ws.store.get_run(request.path_params["run_id"])}

Every route asks the app's authorizer (:func:`shipyard.server.auth.authorize`) before its
function runs, exactly as the API routes do: pages and data as ``read``, actions with the action
they declare (``deploy`` for promote / rollback / pause). A :class:`~shipyard.errors.ShipyardError`
raised by a page becomes an HTML error page with the error's status and message (the cause and
the fix); data endpoints keep the API's JSON error shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from shipyard._version import __version__
from shipyard.errors import InvalidInput, ShipyardError
from shipyard.server._http_util import json_response
from shipyard.server.auth import Action, authorize, cross_site_refusal, principal_of

if TYPE_CHECKING:
    import jinja2

    from shipyard.workspace import Workspace

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

PageHandler = Callable[[Request, "Workspace"], dict[str, Any]]
DataHandler = Callable[[Request, "Workspace"], Any]
ActionHandler = Callable[[Request, "Workspace", dict[str, str]], str]


ScopeFn = Callable[[Request, "Workspace"], str]
"""Names the resource of a request when the path does not (the model a monitor watches)."""


@dataclass(frozen=True, slots=True)
class UiEndpoint:
    """One UI route: its path, kind, auth action and resource (``kind:<path param>``)."""

    path: str
    kind: str
    """``page`` (HTML), ``data`` (JSON for a chart) or ``action`` (a POST that redirects)."""
    action: Action
    resource: str
    resource_param: str | None
    handler: Callable[..., Any]
    template: str | None = None
    scope: ScopeFn | None = None

    def resource_of(self, request: Request) -> str:
        if self.resource_param is None:
            return f"{self.resource}:*"
        return f"{self.resource}:{request.path_params.get(self.resource_param, '*')}"


@dataclass
class UiRouter:
    """Collects the UI routes of one module.

    ``resource`` and ``resource_param`` name what the authorizer is asked about, as in the
    API's routes (``run`` + ``run_id`` -> ``run:8f2c...``); ``scope`` instead computes it (in a
    worker thread) where the path names something grants are not given on, so that a grant on
    the registered model covers its deployments.
    """

    endpoints: list[UiEndpoint] = field(default_factory=list)

    def page(
        self,
        path: str,
        template: str,
        *,
        resource: str,
        resource_param: str | None = None,
        scope: ScopeFn | None = None,
    ) -> Callable[[PageHandler], PageHandler]:
        """A GET answered with ``template`` rendered over the handler's dict (action ``read``)."""
        return self._add(
            partial(
                UiEndpoint,
                path,
                "page",
                "read",
                resource,
                resource_param,
                template=template,
                scope=scope,
            )
        )

    def data(
        self,
        path: str,
        *,
        resource: str,
        resource_param: str | None = None,
        scope: ScopeFn | None = None,
    ) -> Callable[[DataHandler], DataHandler]:
        """A GET answered with the handler's value as JSON (action ``read``)."""
        return self._add(
            partial(UiEndpoint, path, "data", "read", resource, resource_param, scope=scope)
        )

    def action(
        self,
        path: str,
        *,
        action: Action,
        resource: str,
        resource_param: str | None = None,
        scope: ScopeFn | None = None,
    ) -> Callable[[ActionHandler], ActionHandler]:
        """A POST form: the handler gets the form fields and returns where to redirect."""
        return self._add(
            partial(UiEndpoint, path, "action", action, resource, resource_param, scope=scope)
        )

    def _add(self, make: Callable[[Any], UiEndpoint]) -> Callable[[Any], Any]:
        def decorate(handler: Any) -> Any:
            self.endpoints.append(make(handler))
            return handler

        return decorate

    def routes(self, ws: Workspace) -> list[BaseRoute]:
        return [_bind(e, ws) for e in self.endpoints]


def _bind(endpoint: UiEndpoint, ws: Workspace) -> Route:
    handler = endpoint.handler

    async def call(request: Request) -> Response:
        try:
            if endpoint.scope is not None:
                resource = await run_in_threadpool(endpoint.scope, request, ws)
            else:
                resource = endpoint.resource_of(request)
            await authorize(request, endpoint.action, resource)
            if endpoint.kind == "data":
                result = await run_in_threadpool(handler, request, ws)
                return result if isinstance(result, Response) else json_response(result)
            if endpoint.kind == "action":
                same_origin(request)
                form = {k: str(v) for k, v in (await request.form()).items()}
                target = await run_in_threadpool(handler, request, ws, form)
                return RedirectResponse(target, status_code=303)
            context = await run_in_threadpool(handler, request, ws)
        except ShipyardError as exc:
            if endpoint.kind == "data":
                raise
            return render(request, "error.html", {"error": exc}, status=exc.http_status)
        assert endpoint.template is not None
        return render(request, endpoint.template, context)

    call.__name__ = handler.__name__
    call.__doc__ = handler.__doc__
    methods = ["POST"] if endpoint.kind == "action" else ["GET"]
    return Route(endpoint.path, call, methods=methods, name=f"ui.{handler.__name__}")


T = TypeVar("T")

PAGE_SIZE = 100
"""Items on one page of a list page."""
MAX_SCAN_PAGES, SCAN_PAGE_SIZE = 50, 1000
"""How many search pages (of how many items) a project-scoped user's filtered list reads at
most."""


def list_page(
    allowed: set[str] | None,
    text: str,
    token: str | None,
    one: Callable[[str], T | None],
    search: Callable[[str | None, int], tuple[list[T], str | None]],
    key: Callable[[T], str],
) -> tuple[list[T], str | None]:
    """A list page's items and next page token. Everything readable (``allowed`` is ``None``,
    see :func:`~shipyard.server.auth.readable_ids`): one page of ``search(token, 100)``. A
    project-scoped user: each granted item read on its own, or, with a filter ``text``, the
    search's pages narrowed to the granted items; on one page."""
    if allowed is None:
        return search(token, PAGE_SIZE)
    if not text:
        return [item for i in sorted(allowed) if (item := one(i)) is not None], None
    out: list[T] = []
    page_token: str | None = None
    for _ in range(MAX_SCAN_PAGES):
        items, page_token = search(page_token, SCAN_PAGE_SIZE)
        out += [item for item in items if key(item) in allowed]
        if not page_token or len(out) >= len(allowed):
            break
    return out, None


def same_origin(request: Request) -> None:
    """Refuse a cross-site POST: browsers send ``Origin`` (or ``Referer``) with forms, and a page
    elsewhere must not be able to press the UI's buttons for a signed-in user (the API's own
    check, :func:`~shipyard.server.auth.cross_site_refusal`)."""
    refusal = cross_site_refusal(request)
    if refusal is not None:
        raise refusal


# ---------------------------------------------------------------------------------- templates


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    try:
        import jinja2
    except ImportError:  # pragma: no cover - jinja2 comes with the server extra
        from shipyard.errors import missing_extra

        raise missing_extra("jinja2", "server") from None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(ms=format_ms, duration=format_duration, num=format_number, short=short_id)
    env.globals.update(shipyard_version=__version__)
    return env


def render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """``template`` rendered with ``context`` plus ``request``, ``user`` and ``url`` helpers."""
    body = (
        environment()
        .get_template(template)
        .render(
            request=request,
            user=principal_of(request),
            url=lambda **changes: with_query(request, **changes),
            **context,
        )
    )
    # The server's SecurityHeadersMiddleware adds the strict CSP (no inline script or style)
    # and the other HTML headers (shipyard.server.protection).
    return HTMLResponse(body, status_code=status)


def with_query(request: Request, **changes: Any) -> str:
    """The current path with its query string changed: ``None`` drops a key, a list repeats it."""
    items: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        items.setdefault(key, []).append(value)
    for key, value in changes.items():
        if value is None:
            items.pop(key, None)
        elif isinstance(value, list | tuple):
            items[key] = [str(v) for v in value]
        else:
            items[key] = [str(value)]
    query = urlencode([(k, v) for k, vs in items.items() for v in vs])
    return request.url.path + (f"?{query}" if query else "")


# ---------------------------------------------------------------------------------- query args


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not a whole number; use {low}..{high}.") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name}={value} is out of range; use {low}..{high}.")
    return value


def path_version(request: Request) -> int:
    """The ``{version}`` path parameter as a number (versions of models and datasets)."""
    raw = request.path_params["version"]
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"version {raw!r} is not a number; versions are 1, 2, 3...") from None


def query_choice(request: Request, name: str, choices: tuple[str, ...]) -> str:
    raw = request.query_params.get(name) or choices[0]
    if raw not in choices:
        raise InvalidInput(f"{name}={raw!r} is not one of {', '.join(choices)}.")
    return raw


# ---------------------------------------------------------------------------------- formatting


def format_ms(ms: int | float | None) -> str:
    if ms is None or ms == 0:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    return f"{value:.6g}"


def short_id(value: str | None) -> str:
    return (value or "")[:8]


def run_duration(start: int | None, end: int | None) -> float | None:
    if not start or not end:
        return None
    return (end - start) / 1000
