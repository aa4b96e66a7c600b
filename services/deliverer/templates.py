"""Customer templates, rendered in a Jinja2 sandbox.

Channels let customers shape text (an e-mail subject and body, an MQTT topic,
an SNMP varbind, chat text) with Jinja2. Templates come from customers, so
they run in the immutable sandbox (no attribute access to internals, no
mutation) with limits on size and work (:mod:`.template_limits`): one
tenant's template must not stall the deliverer's shared event loop or the API,
nor exhaust their memory. Undefined names fail loudly so a typo is caught when
the channel is saved (:func:`check`) rather than producing empty text at
3 a.m.

Every failure, from syntax and refused constructs to a runtime error or an
exceeded limit inside the template, is raised as one :class:`TemplateError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2

from services.deliverer.template_limits import (
    MAX_RENDERED_CHARS,
    BoundedEnvironment,
    compile_bounded,
    work_budget,
)


class TemplateError(Exception):
    """A template that does not parse or does not render."""


def _environment(autoescape: bool) -> BoundedEnvironment:
    return BoundedEnvironment(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


_ENVIRONMENTS = {False: _environment(False), True: _environment(True)}


@lru_cache(maxsize=512)
def _compile(source: str, autoescape: bool) -> jinja2.Template:
    # Both save time (check) and send time compile here, so what is refused
    # at compile time can never reach a delivery.
    try:
        return compile_bounded(_ENVIRONMENTS[autoescape], source)
    except jinja2.TemplateError as error:
        raise TemplateError(_describe(error)) from None
    except (RecursionError, MemoryError) as error:
        # Deeply nested expressions exhaust the parser's or Python's stack.
        raise TemplateError(_too_complex(error)) from None
    except (SyntaxError, ValueError, OverflowError) as error:
        # Python refuses the code Jinja2 generates or a literal in it (an
        # integer of more than 4,300 digits).
        raise TemplateError(f"{type(error).__name__}: {error}") from None


def render(source: str, context: dict[str, Any], *, autoescape: bool = False) -> str:
    """Render ``source`` with ``context``; ``autoescape`` for HTML output."""
    template = _compile(source, autoescape)
    try:
        with work_budget():
            return _collect(template.generate(context))
    except jinja2.TemplateError as error:
        raise TemplateError(_describe(error)) from None
    except (ArithmeticError, TypeError, ValueError, LookupError) as error:
        raise TemplateError(f"{type(error).__name__}: {error}") from None
    except (RecursionError, MemoryError) as error:
        raise TemplateError(_too_complex(error)) from None


def _collect(pieces: Iterator[str]) -> str:
    # Stops at the cap instead of joining a runaway output first.
    collected: list[str] = []
    length = 0
    for piece in pieces:
        length += len(piece)
        if length > MAX_RENDERED_CHARS:
            raise TemplateError(
                f"rendered text longer than {MAX_RENDERED_CHARS} characters"
            )
        collected.append(piece)
    return "".join(collected)


def check(source: str, *, autoescape: bool = False) -> str:
    """Validate ``source`` by rendering it against a sample alert; returns it.

    Raises :class:`ValueError` (what pydantic validators expect) naming the
    problem, so a broken template is refused when the channel is saved.
    """
    try:
        render(source, sample_context(), autoescape=autoescape)
    except TemplateError as error:
        raise ValueError(f"template error: {error}") from None
    return source


def _describe(error: jinja2.TemplateError) -> str:
    line = getattr(error, "lineno", None)
    where = f" (line {line})" if line else ""
    return f"{type(error).__name__}{where}: {error.message or error}"


def _too_complex(error: BaseException) -> str:
    return f"{type(error).__name__}: the template is too deeply nested or too large"


def alert_context(command: dict[str, Any], channel_name: str = "") -> dict[str, Any]:
    """The names a template sees for one delivery command.

    Every AlertEvent field at the top level (``summary``, ``severity`` …), plus
    ``job_id``, ``attempt``, ``channel_id``, ``channel_name``, ``is_test`` and the
    ``alert`` itself. Enum values are plain strings and ``occurred_at`` an
    ISO 8601 string, so templates need no knowledge of Avro types. A label
    the alert lacks reads as empty text (:class:`Labels`).
    """
    alert = command["alert"]
    context = {key: _plain(value) for key, value in alert.items()}
    context["labels"] = Labels(alert.get("labels") or {})
    context.update(
        job_id=command["job_id"],
        attempt=command["attempt"],
        channel_id=command["channel_id"],
        channel_name=channel_name,
        rule_id=command.get("rule_id"),
        is_test=bool(command.get("is_test")),
    )
    context["alert"] = dict(context)
    return context


class Labels(dict[str, str]):
    """An alert's labels; a label the alert lacks reads as empty text.

    Labels differ from alert to alert, so ``{{ labels.rack }}`` must not fail
    (nor be refused at save time) just because one alert has no ``rack``.
    """

    def __missing__(self, key: str) -> str:
        return ""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)
    return value


def sample_context() -> dict[str, Any]:
    """A realistic context used to validate templates at save time."""
    return alert_context(
        {
            "job_id": "00000000-0000-0000-0000-000000000000",
            "attempt": 1,
            "channel_id": "sample-channel",
            "rule_id": "sample-rule",
            "is_test": True,
            "alert": {
                "event_id": "00000000-0000-0000-0000-000000000001",
                "tenant_id": "sample-tenant",
                "alert_id": "sample-alert",
                "kind": "OPEN",
                "severity": "CRITICAL",
                "alert_type": "link_down",
                "site_id": "site-1",
                "device_id": "router-1",
                "summary": "Link down on router-1",
                "details": "Interface ge-0/0/1 lost carrier.",
                "labels": {"region": "eu"},
                "occurred_at": datetime(2026, 1, 1),
                "source": "sample",
            },
        },
        channel_name="Sample channel",
    )
