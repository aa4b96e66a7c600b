"""The customers' web page, served by the API process under ``/ui``.

Server-rendered pages (Jinja2) with a little JavaScript that only enhances them;
every asset is served from ``/ui/static``. Pages call the API's own endpoints
in-process with the signed-in tenant's key (see :mod:`services.api.ui.client`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from itsdangerous import URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from services.api.ui import auth, channels, deliveries, rules
from services.api.ui.access import EXCEPTION_HANDLERS
from services.api.ui.render import HERE, add_security_headers
from services.api.ui.session import SessionCodec, derived_key
from switchboard.settings import Settings

PREFIX = "/ui"


async def _headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    if request.url.path.startswith(PREFIX):
        add_security_headers(response)
    return response


def install_ui(app: FastAPI, settings: Settings) -> None:
    """Serve the web page from ``app``: routes, static files, sessions."""
    app.state.ui_sessions = SessionCodec(settings)
    app.state.ui_notices = URLSafeTimedSerializer(
        derived_key(settings, b"notice"), salt="switchboard.ui.notice"
    )
    app.mount(
        f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="ui-static"
    )
    for module in (auth, channels, rules, deliveries):
        app.include_router(module.router)
    for error, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(error, handler)
    app.middleware("http")(_headers)
