"""Who may use a page: the signed-in tenant's API client and CSRF-checked forms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.api.ui.client import ApiClient, SignedOut
from services.api.ui.render import render
from services.api.ui.session import COOKIE, csrf_ok, forget, session_of

SIGN_IN_PATH = "/ui/sign-in"


class NeedsSignIn(Exception):
    """The request has no signed-in session."""


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


async def tenant_api(request: Request) -> AsyncIterator[ApiClient]:
    """The API as the signed-in tenant; sends anyone else to the sign-in page."""
    session = session_of(request)
    if session.api_key is None:
        raise NeedsSignIn()
    client = ApiClient(request, session.api_key)
    try:
        yield client
    finally:
        await client.aclose()


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's."""
    form = await request.form()
    if not csrf_ok(session_of(request), form.get("csrf")):
        raise CsrfRefused()
    return form


Api = Annotated[ApiClient, Depends(tenant_api)]
Form = Annotated[FormData, Depends(checked_form)]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a page of this UI, never another site."""
    if target and target.startswith("/ui/") and not target.startswith("/ui//"):
        return target
    return "/ui/channels"


async def _to_sign_in(request: Request, error: Exception) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = here if request.method == "GET" else ""
    response = RedirectResponse(
        f"{SIGN_IN_PATH}?next={quote(target)}" if target else SIGN_IN_PATH, 303
    )
    if isinstance(error, SignedOut):
        forget(response)
    return response


NO_COOKIE = (
    "Your browser sent no session cookie with this form. The session cookie is "
    "Secure: open this page over HTTPS (or on localhost) with cookies allowed."
)
EXPIRED = (
    "This form was not sent from the current session. "
    "Go back, reload the page and try again."
)


async def _refuse_form(request: Request, error: Exception) -> Response:
    # Without any cookie the likely cause is plain HTTP dropping the Secure
    # cookie, which reloading would never fix.
    message = EXPIRED if COOKIE in request.cookies else NO_COOKIE
    return render(
        request,
        "message.html",
        {"title": "Form expired", "message": message},
        status_code=403,
    )


EXCEPTION_HANDLERS = {
    NeedsSignIn: _to_sign_in,
    SignedOut: _to_sign_in,
    CsrfRefused: _refuse_form,
}
