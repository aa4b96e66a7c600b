"""The API as the web page uses it: its own HTTP endpoints, called in-process.

Every read and write the page makes goes through the same routes, models and
validation as an API client's, authenticated with the signed-in tenant's key;
the page adds no second path to the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request

# Only used to build request URLs; the transport never leaves the process.
_BASE_URL = "http://switchboard-api"
_TIMEOUT_S = 30.0


class SignedOut(Exception):
    """The API refused the session's key (revoked or unknown): sign in again."""


@dataclass
class ApiAnswer:
    """An API response: status, JSON body, and its problems by field."""

    status: int
    body: Any
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the API accepted the request."""
        return self.status < 400


def _problems(body: Any) -> dict[str, str]:
    # Every 4xx body is {"detail": [{"field", "problem"}]}; several problems for
    # one field are shown together.
    found: dict[str, str] = {}
    details = body.get("detail") if isinstance(body, dict) else None
    for item in details if isinstance(details, list) else []:
        name, problem = str(item.get("field", "")), str(item.get("problem", ""))
        found[name] = f"{found[name]}; {problem}" if name in found else problem
    return found


class ApiClient:
    """Calls the application's own API with one tenant's key."""

    def __init__(self, request: Request, api_key: str) -> None:
        """A client for the app serving ``request``."""
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=request.app),
            base_url=_BASE_URL,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=_TIMEOUT_S,
        )

    async def call(
        self, method: str, path: str, body: Any = None, params: Any = None
    ) -> ApiAnswer:
        """One API request; raises :class:`SignedOut` on a 401."""
        response = await self._client.request(method, path, json=body, params=params)
        data = response.json() if response.content else None
        if response.status_code == 401:
            raise SignedOut()
        answer = ApiAnswer(response.status_code, data)
        if not answer.ok:
            answer.problems = _problems(data)
        return answer

    async def get(self, path: str, **params: Any) -> ApiAnswer:
        """GET ``path`` with the non-empty ``params``."""
        given = {k: v for k, v in params.items() if v not in (None, "")}
        return await self.call("GET", path, params=given)

    async def aclose(self) -> None:
        """Release the client."""
        await self._client.aclose()
