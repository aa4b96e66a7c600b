"""Checks shared by every resource's models."""

from __future__ import annotations

from typing import Any

from services.api.errors import ApiError

# PostgreSQL text and jsonb cannot hold NUL, and lone surrogates do not encode
# as UTF-8: both would otherwise fail deep in the driver as a 500.


def unstorable_text(value: Any, path: str) -> list[tuple[str, str]]:
    """(field, problem) for every string in ``value`` PostgreSQL cannot store."""
    if isinstance(value, str):
        return _text_problem(value, path)
    if isinstance(value, dict):
        problems = []
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            problems += _text_problem(str(key), child) + unstorable_text(item, child)
        return problems
    if isinstance(value, list | tuple):
        problems = []
        for index, item in enumerate(value):
            problems += unstorable_text(item, f"{path}.{index}")
        return problems
    return []


def _text_problem(text: str, path: str) -> list[tuple[str, str]]:
    if "\x00" in text:
        return [(path, "text must not contain the NUL character")]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return [(path, "text must be valid Unicode (no lone surrogates)")]
    return []


def require_storable(value: Any, path: str = "") -> None:
    """Raise a 422 naming each string in ``value`` PostgreSQL cannot store."""
    problems = unstorable_text(value, path)
    if problems:
        raise ApiError(422, problems)
