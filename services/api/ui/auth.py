"""Signing in with a tenant API key, and out."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.api.ui.access import Form, safe_next
from services.api.ui.client import ApiClient, SignedOut
from services.api.ui.render import notice_redirect, render
from services.api.ui.session import forget, new_session, session_of, store

router = APIRouter(prefix="/ui")


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    """The channels page, or the sign-in page first."""
    target = "/ui/channels" if session_of(request).signed_in else "/ui/sign-in"
    return RedirectResponse(target, 303)


@router.get("/sign-in", include_in_schema=False)
async def sign_in_page(request: Request) -> Response:
    """The sign-in form."""
    context = {"next": safe_next(request.query_params.get("next")), "error": ""}
    return render(request, "sign_in.html", context)


async def _key_works(request: Request, key: str) -> bool:
    client = ApiClient(request, key)
    try:
        await client.get("/customer/notification-channels")
    except SignedOut:
        return False
    finally:
        await client.aclose()
    return True


@router.post("/sign-in", include_in_schema=False)
async def sign_in(request: Request, form: Form) -> Response:
    """Check the key against the API and start a new session with it."""
    key = str(form.get("api_key") or "").strip()
    target = safe_next(str(form.get("next") or ""))
    if not key or not await _key_works(request, key):
        problem = "Enter your API key." if not key else "This API key is not valid."
        context = {"next": target, "error": problem}
        return render(request, "sign_in.html", context, status_code=401)
    response = RedirectResponse(target, 303)
    # A fresh session (and CSRF token) at sign-in, so none set before carries over.
    store(request, response, new_session(key))
    return response


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request, form: Form) -> Response:
    """End the session."""
    response = notice_redirect(request, "/ui/sign-in", "Signed out.")
    forget(response)
    return response
