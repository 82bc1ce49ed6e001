"""The web page's Starlette app: routes, the gate around each, static files, errors as pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from agent_memory.errors import AgentMemoryError, NotFound
from agent_memory.service import MemoryService
from agent_memory.web import actions, views
from agent_memory.web.render import page
from agent_memory.web.security import Guard, Headers, guarded, same_origin, set_cookie

PATH = "/ui"
Action = Callable[[Request, MemoryService], Awaitable[Response]]


def build_app(current: Callable[[], MemoryService], guard: Guard) -> Starlette:
    """Return the page as an app to mount at /ui; `current` returns the open service."""

    def route(path: str, action: Action, name: str, methods: tuple[str, ...] = ("GET",)) -> Route:
        async def handle(request: Request) -> Response:
            service = current().scoped(request.state.user)
            try:
                return await action(request, service)
            except AgentMemoryError as exc:
                status = 404 if isinstance(exc, NotFound) else 400
                return page(request, "error.html", status=status, message=str(exc))

        return Route(path, guarded(guard, handle), name=name, methods=list(methods))

    async def login(request: Request) -> Response:
        return await _login(request, guard)

    routes: list[BaseRoute] = [
        route("/", views.timeline, "timeline"),
        route("/search", views.search, "search"),
        route("/memory/{id}", views.memory, "memory"),
        route("/memory/{id}/edit", actions.edit, "edit", ("POST",)),
        route("/forget/confirm", actions.confirm_forget, "confirm_forget", ("POST",)),
        route("/forget", actions.forget, "forget", ("POST",)),
        route("/export", actions.export_filtered, "export"),
        route("/export/selected", actions.export_selected, "export_selected", ("POST",)),
        route("/import", actions.import_form, "import_form"),
        route("/import", actions.import_file, "import_file", ("POST",)),
        route("/namespaces", views.namespaces, "namespaces"),
        route("/health", views.health, "health"),
        Route("/login", login, name="login", methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Headers, guard=guard)])


async def _login(request: Request, guard: Guard) -> Response:
    """Trade a token (one-time in the URL, or one typed in) or a user's password for a session cookie."""
    request.state.user, request.state.csrf = None, ""

    def again(status: int, message: str | None) -> Response:
        return page(request, "login.html", status=status, message=message, passwords=guard.users is not None)

    message = "That token is not known here (or was used already)."
    if request.method == "POST":
        if not same_origin(request):
            return again(403, "Refused: the form did not come from this page.")
        form = await request.form()
        name = str(form.get("username", "")).strip()
        if name:
            user = await guard.user_of_password(name, str(form.get("password", "")))
            message = "Wrong user name or password."
        else:
            user = await guard.user_of_bearer(str(form.get("token", "")).strip())
    else:
        token = request.query_params.get("token", "")
        if not token:
            return again(200, None)
        user = guard.user_of_token(token, once=True)
    if user is None:
        return again(401, message)
    key, _ = guard.open_session(user)
    # Redirect so the token leaves the address bar and the history.
    response = RedirectResponse(str(request.url_for("timeline")), status_code=303)
    set_cookie(response, request, key)
    return response
