"""One error shape for every error answer: a list of problems, each naming its field.

Clients get ``{"detail": [{"field": "config.url", "problem": "…"}]}`` whatever
went wrong: a validation error, an unknown id, a missing key or a conflict.

The database being unavailable (down, restarting, or no pooled connection free
in time) is a 503 with the same body, logged as a WARNING without a traceback
and at most once per interval, since during an outage every request fails the
same way. Anything else unexpected is a 500, logged once with its traceback by
:class:`CatchUnexpected`, so a request never leaks a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.db import database_unavailable, error_line
from switchboard.domain import ChannelType

log = logging.getLogger(__name__)

# FastAPI starts a body error's location with "body"; clients know the field by
# its path inside the body. The channel union adds the type's tag after it.
_BODY = "body"
_UNION_TAGS = frozenset(str(t) for t in ChannelType)

# What a client should wait before trying again while the database is away; a
# restart takes seconds, and the pool reconnects within a few of them.
DATABASE_RETRY_AFTER_S = 5
DATABASE_UNAVAILABLE = "the database is unavailable; try again shortly"
# During an outage every request is refused the same way: one line per interval
# (with how many were refused since the last) says so; the requests metric
# counts each 503.
UNAVAILABLE_LOG_INTERVAL_S = 10.0


class Problem(BaseModel):
    """One thing wrong with a request."""

    field: str = Field(
        description="Where the problem is: a dotted body path such as "
        "`config.url`, or a parameter or header name."
    )
    problem: str = Field(description="What is wrong, in words.")


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: list[Problem] = Field(description="Every problem found, at least one.")


class ApiError(Exception):
    """Raised by routes to answer with a 4xx naming the fields at fault."""

    def __init__(
        self,
        status_code: int,
        problems: Sequence[tuple[str, str]],
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``status_code`` with (field, problem) pairs."""
        super().__init__(problems)
        self.status_code = status_code
        self.problems = list(problems)
        self.headers = headers


def not_found(field: str, what: str) -> ApiError:
    """The 404 for an object that does not exist or belongs to another tenant."""
    return ApiError(404, [(field, f"no {what} with this id")])


def conflict(field: str, problem: str) -> ApiError:
    """The 409 for a request the object's current state does not allow."""
    return ApiError(409, [(field, problem)])


def refuse_unknown_query(request: Request, known: Iterable[str] = ()) -> None:
    """Raise a 422 naming every query parameter not in ``known``.

    List endpoints use it so that a misspelt filter is an error instead of an
    unfiltered answer that looks filtered.
    """
    allowed = sorted(known)
    takes = (
        f"this list takes {', '.join(allowed)}" if allowed else "this list takes none"
    )
    unknown = sorted({name for name in request.query_params if name not in allowed})
    if unknown:
        raise ApiError(
            422, [(name, f"unknown query parameter; {takes}") for name in unknown]
        )


def dotted(loc: Iterable[Any]) -> str:
    """A pydantic error location as a dotted path without the leading ``body``."""
    parts = [str(part) for part in loc]
    if parts and parts[0] == _BODY:
        parts = parts[1:]
    return ".".join(parts) or _BODY


def problems_of(error: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """The (field, problem) pairs of a pydantic error, under ``prefix``."""
    pairs = []
    for item in error.errors(include_url=False, include_input=False):
        path = dotted(item["loc"])
        pairs.append(
            (f"{prefix}.{path}" if prefix and path else prefix or path, item["msg"])
        )
    return pairs


def _body(problems: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"detail": [{"field": f, "problem": p} for f, p in problems]}


def _request_field(loc: Sequence[Any]) -> str:
    # ("body", "config", "webhook", "url"): the discriminated union adds the tag
    # of the channel type; a client only knows "config.url".
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("query", "path", "header", "cookie"):
        return ".".join(parts[1:]) or parts[0]
    return dotted(_without_union_tags(parts))


def _without_union_tags(parts: list[str]) -> list[str]:
    return [
        part
        for index, part in enumerate(parts)
        if not (index == 1 and part in _UNION_TAGS)
    ]


async def _validation_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = []
    for item in error.errors():
        message = item.get("msg", "invalid value")
        loc = tuple(item.get("loc", ()))
        if item.get("type") == "json_invalid":
            # The location is the character offset of the syntax error.
            error_text = item.get("ctx", {}).get("error", "")
            message = f"the body is not valid JSON: {error_text} (at {loc[-1]})"
            loc = (_BODY,)
        if item.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            # The union reports the body itself; the client got the tag wrong.
            loc += (str(item.get("ctx", {}).get("discriminator", "")).strip("'"),)
        problems.append((_request_field(loc), message))
    return JSONResponse(_body(problems or [(_BODY, "invalid request")]), 422)


async def _api_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(_body(error.problems), error.status_code, headers=error.headers)


async def _http_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    field = {400: _BODY, 404: "path", 405: "method", 413: _BODY}.get(
        error.status_code, "request"
    )
    problem = str(error.detail) if error.detail else "request refused"
    return JSONResponse(
        _body([(field, problem)]), error.status_code, headers=error.headers
    )


def internal_error(scope: Scope, error: BaseException) -> JSONResponse:
    """Log an unexpected error with its traceback, once; the 500 that answers it."""
    log.error(
        "request failed",
        exc_info=error,
        extra={"method": scope.get("method"), "path": scope.get("path")},
    )
    return JSONResponse(_body([("request", "internal error")]), 500)


class CatchUnexpected:
    """ASGI middleware answering any error no handler took with a logged 500.

    Starlette's own catch-all (an exception handler for ``Exception``) answers
    and then re-raises, so the server logged every such error a second time
    with the whole traceback, and middleware outside it never saw the 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request; an error before the response began becomes a 500."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if started:
                # Too late for another answer: the server logs the error and
                # drops the connection.
                raise
            await internal_error(scope, error)(scope, receive, send)


class _UnavailableLog:
    """Logs refusals for an unavailable database at most once per interval."""

    def __init__(self, interval_s: float = UNAVAILABLE_LOG_INTERVAL_S) -> None:
        """Log the first refusal, then at most one every ``interval_s``."""
        self._interval_s = interval_s
        self._last = float("-inf")
        self._unlogged = 0

    def refused(self, request: Request, error: Exception) -> None:
        """Count one refused request; log it unless a line went out lately."""
        now = time.monotonic()
        if now - self._last < self._interval_s:
            self._unlogged += 1
            return
        log.warning(
            "database unavailable; request answered 503",
            extra={
                "method": request.method,
                "path": request.url.path,
                "error": error_line(error),
                "unlogged_refusals": self._unlogged,
            },
        )
        self._last = now
        self._unlogged = 0


def _database_handler(
    unavailable_log: _UnavailableLog,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(request: Request, error: Exception) -> JSONResponse:
        """A 503 if the database is unavailable; a logged 500 for anything else."""
        if not database_unavailable(error):
            # A statement the database refused for its own reasons is a bug.
            return internal_error(request.scope, error)
        unavailable_log.refused(request, error)
        return JSONResponse(
            _body([("request", DATABASE_UNAVAILABLE)]),
            503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )

    return handle


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response of ``app`` an :class:`ErrorBody`.

    Install it before other middleware, so that those see the 500s too.
    """
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    # OperationalError covers the pool's PoolTimeout and a lost connection's
    # AdminShutdown; the handler tells an outage from other operational errors.
    app.add_exception_handler(
        psycopg.OperationalError, _database_handler(_UnavailableLog())
    )
    app.add_middleware(CatchUnexpected)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body cannot be parsed at all."},
    401: {"model": ErrorBody, "description": "Missing, unknown or revoked API key."},
    404: {"model": ErrorBody, "description": "No such object for this tenant."},
    413: {"model": ErrorBody, "description": "The request body is too large."},
    422: {"model": ErrorBody, "description": "The request is invalid; see `detail`."},
    503: {
        "model": ErrorBody,
        "description": "The database is unavailable; try again after `Retry-After`.",
    },
}
