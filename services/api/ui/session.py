"""The web page's session: a signed cookie holding the tenant's key, encrypted.

The page calls the API with the signed-in tenant's own key, so the session has
to keep that key. It travels only inside the cookie, encrypted (Fernet) and
signed (itsdangerous) with keys derived from ``settings.secret_key``, and the
cookie is Secure, HttpOnly and SameSite=Strict: scripts cannot read it and no
other site can make the browser send it. Each session also carries a random
CSRF token that every form posts back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from switchboard.settings import Settings

COOKIE = "sb_session"
COOKIE_PATH = "/ui"
# A signed-in page stays usable for a working day; then the key is asked again.
MAX_AGE_S = 12 * 3600
_SALT = "switchboard.ui.session"


def derived_key(settings: Settings, purpose: bytes) -> bytes:
    """A key for one ``purpose`` of the web page, derived from the secret key."""
    # Separate keys for signing and encrypting, neither equal to the key that
    # encrypts channel secrets at rest.
    root = settings.secret_key.get_secret_value().encode()
    return hmac.new(root, b"switchboard-ui:" + purpose, hashlib.sha256).digest()


@dataclass
class Session:
    """What the cookie holds: a CSRF token and, once signed in, the API key."""

    csrf: str
    api_key: str | None = None
    # True until the cookie holds this session.
    unsaved: bool = False

    @property
    def signed_in(self) -> bool:
        """Whether a tenant key is present."""
        return self.api_key is not None


class SessionCodec:
    """Turns sessions into cookie values and back."""

    def __init__(self, settings: Settings) -> None:
        """Derive the signing and encryption keys from ``settings``."""
        self._serializer = URLSafeTimedSerializer(
            derived_key(settings, b"sign"), salt=_SALT
        )
        self._fernet = Fernet(
            base64.urlsafe_b64encode(derived_key(settings, b"encrypt"))
        )

    def dumps(self, session: Session) -> str:
        """The cookie value of ``session``."""
        sealed = (
            self._fernet.encrypt(session.api_key.encode()).decode()
            if session.api_key
            else None
        )
        return self._serializer.dumps({"c": session.csrf, "k": sealed})

    def loads(self, value: str | None) -> Session | None:
        """The session of a cookie value; None when missing, forged or expired."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=MAX_AGE_S)
            sealed = data.get("k")
            key = self._fernet.decrypt(sealed.encode()).decode() if sealed else None
        except (BadSignature, InvalidToken, AttributeError, TypeError):
            return None
        return Session(csrf=str(data.get("c", "")), api_key=key)


def new_session(api_key: str | None = None) -> Session:
    """A fresh session with a new CSRF token."""
    return Session(csrf=secrets.token_urlsafe(32), api_key=api_key)


def session_of(request: Request) -> Session:
    """The request's session, or a new anonymous one (stored on the request)."""
    cached = getattr(request.state, "ui_session", None)
    if cached is None:
        codec: SessionCodec = request.app.state.ui_sessions
        cached = codec.loads(request.cookies.get(COOKIE))
        if cached is None:
            cached = new_session()
            cached.unsaved = True
        request.state.ui_session = cached
    return cached


def store(request: Request, response: Response, session: Session) -> None:
    """Write ``session`` into the response's cookie."""
    codec: SessionCodec = request.app.state.ui_sessions
    response.set_cookie(
        COOKIE,
        codec.dumps(session),
        max_age=MAX_AGE_S,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )


def forget(response: Response) -> None:
    """Remove the session cookie."""
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict"
    )


def csrf_ok(session: Session, token: str | None) -> bool:
    """Whether a posted CSRF token is the session's."""
    return bool(token) and hmac.compare_digest(session.csrf, str(token))
