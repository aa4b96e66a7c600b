"""One error shape for every 4xx: a list of problems, each naming its field.

Clients get ``{"detail": [{"field": "config.url", "problem": "…"}]}`` whatever
went wrong: a validation error, an unknown id, a missing key or a conflict.
Anything unexpected is mapped here too, so a request never leaks a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard.domain import ChannelType

log = logging.getLogger(__name__)

# FastAPI starts a body error's location with "body"; clients know the field by
# its path inside the body. The channel union adds the type's tag after it.
_BODY = "body"
_UNION_TAGS = frozenset(str(t) for t in ChannelType)


class Problem(BaseModel):
    """One thing wrong with a request."""

    field: str = Field(
        description="Where the problem is: a dotted body path such as "
        "`config.url`, or a parameter or header name."
    )
    problem: str = Field(description="What is wrong, in words.")


class ErrorBody(BaseModel):
    """The body of every 4xx response."""

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


async def _unexpected_handler(request: Request, error: Exception) -> JSONResponse:
    log.exception("request failed", extra={"path": request.url.path})
    return JSONResponse(
        {"detail": [{"field": "request", "problem": "internal error"}]}, 500
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response of ``app`` an :class:`ErrorBody`."""
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body cannot be parsed at all."},
    401: {"model": ErrorBody, "description": "Missing, unknown or revoked API key."},
    404: {"model": ErrorBody, "description": "No such object for this tenant."},
    413: {"model": ErrorBody, "description": "The request body is too large."},
    422: {"model": ErrorBody, "description": "The request is invalid; see `detail`."},
}
