"""Rendering pages: the template environment, notices, redirects and headers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.api.ui.forms import TYPE_TITLES
from services.api.ui.session import COOKIE_PATH, session_of, store

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

NOTICE_COOKIE = "sb_notice"
# A notice is shown on the page a redirect leads to, right after it.
NOTICE_MAX_AGE_S = 60

# Everything the page loads comes from this server; nothing may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def when(value: Any) -> str:
    """A timestamp as people read it, in UTC to the second."""
    if not value:
        return ""
    moment = datetime.fromisoformat(str(value)) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["when"] = when
templates.env.globals["type_titles"] = TYPE_TITLES


def _notices(request: Request) -> URLSafeTimedSerializer:
    return request.app.state.ui_notices


def notice_redirect(request: Request, url: str, notice: str = "") -> Response:
    """A 303 to ``url`` that shows ``notice`` there once."""
    response = RedirectResponse(url, status_code=303)
    if notice:
        response.set_cookie(
            NOTICE_COOKIE,
            _notices(request).dumps(notice),
            max_age=NOTICE_MAX_AGE_S,
            path=COOKIE_PATH,
            secure=True,
            httponly=True,
            samesite="strict",
        )
    return response


def _take_notice(request: Request) -> str:
    value = request.cookies.get(NOTICE_COOKIE)
    if not value:
        return ""
    try:
        return str(_notices(request).loads(value, max_age=NOTICE_MAX_AGE_S))
    except BadSignature:
        return ""


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """A page from template ``name``; includes the CSRF token and any notice."""
    session = session_of(request)
    notice = _take_notice(request)
    response = templates.TemplateResponse(
        request,
        name,
        {"csrf": session.csrf, "signed_in": session.signed_in, "notice": notice}
        | context,
        status_code=status_code,
    )
    if notice:
        response.delete_cookie(NOTICE_COOKIE, path=COOKIE_PATH)
    if session.unsaved:
        store(request, response, session)
    return response


def add_security_headers(response: Response) -> None:
    """Headers every page gets: a strict content policy and no caching."""
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
