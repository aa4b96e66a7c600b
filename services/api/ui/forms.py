"""HTML forms generated from the API's typed models, and form data turned back
into API request bodies.

A channel type's form comes from its ``Config`` and ``Secrets`` models (the
registry in ``services.deliverer.channels``) and the rule form from
``RuleFields``, so a field added to a model appears on the page by itself. The
page converts only the shape of the values (a line per list item, checkboxes to
booleans); the API validates them, and its problems are shown beside the field
they name.
"""

from __future__ import annotations

import enum
import json
import math
import types
import typing
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import AnyUrl, BaseModel
from pydantic.fields import FieldInfo
from starlette.datastructures import FormData

from services.api.models.rules import RuleFields
from services.deliverer.channels import CHANNEL_SPECS
from switchboard.domain import ChannelType

# Words shown in capitals or otherwise spelled in labels.
_WORDS = {
    "url": "URL",
    "html": "HTML",
    "oid": "OID",
    "pem": "PEM",
    "qos": "QoS",
    "tls": "TLS",
    "ca": "CA",
    "cc": "Cc",
    "id": "ID",
    "ids": "IDs",
    "to": "To",
    "s": "(seconds)",
}
# Labels that must not contain another input's label, so that a voice-control
# user saying "Headers" (or a label search) finds exactly one input.
_LABELS = {"secrets.secret_headers": "Secret header lines"}
# Free-text fields that hold more than one line.
_LONG_TEXT_SUFFIXES = ("template", "_pem")
TYPE_TITLES = {
    "slack": "Slack",
    "pagerduty": "PagerDuty",
    "teams": "Microsoft Teams",
    "webhook": "Webhook",
    "snmp": "SNMP trap",
    "email": "E-mail",
    "mqtt": "MQTT",
}


@dataclass
class FormField:
    """One input: its HTML name, widget kind, label, choices and value."""

    name: str
    kind: str
    label: str
    hint: str = ""
    required: bool = False
    optional: bool = False
    choices: list[tuple[str, str]] = field(default_factory=list)
    value: Any = None
    empty_choice: str = "(none)"
    secret_set: bool = False
    # A secret that holds several ``Name: value`` lines (secret headers).
    multiline: bool = False
    error: str = ""

    @property
    def html_id(self) -> str:
        """The input's element id."""
        return "f-" + self.name.replace(".", "-").replace("_", "-")


def label_for(name: str) -> str:
    """A label for people from a field name: ``timeout_s`` → "Timeout (seconds)"."""
    words = [_WORDS.get(word, word) for word in name.split("_")]
    text = " ".join(words)
    return text[0].upper() + text[1:]


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _is_class(annotation: Any, base: type) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, base)


def _widget(name: str, annotation: Any) -> tuple[str, list[tuple[str, str]]]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "select", [(str(a), str(a)) for a in args]
    if _is_class(annotation, enum.Enum):
        return "select", [(str(m.value), str(m.value)) for m in annotation]
    if origin is list:
        if args and _is_class(args[0], enum.Enum):
            return "multi", [(str(m.value), str(m.value)) for m in args[0]]
        if args and _is_class(args[0], BaseModel):
            return "json", [(name, name) for name in args[0].model_fields]
        return "lines", []
    if origin is dict:
        return "pairs", []
    simple = {bool: "checkbox", int: "integer", float: "number", uuid.UUID: "select"}
    if annotation in simple:
        return simple[annotation], []
    if _is_class(annotation, AnyUrl):
        return "url", []
    return ("textarea" if name.endswith(_LONG_TEXT_SUFFIXES) else "text"), []


def _form_field(prefix: str, name: str, info: FieldInfo) -> FormField:
    annotation, optional = _unwrap_optional(info.annotation)
    kind, choices = _widget(name, annotation)
    return FormField(
        name=f"{prefix}{name}",
        kind=kind,
        label=label_for(name),
        hint=info.description or "",
        required=info.is_required(),
        optional=optional,
        choices=choices,
    )


def _default(info: FieldInfo) -> Any:
    if info.is_required():
        return None
    return info.get_default(call_default_factory=True)


def display(kind: str, value: Any) -> Any:
    """A model value as its input shows it."""
    if value is None:
        return False if kind == "checkbox" else ""
    if kind == "lines":
        return "\n".join(str(item) for item in value)
    if kind == "pairs":
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    if kind == "multi":
        return [str(item) for item in value]
    if kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    return value if kind == "checkbox" else str(value)


def _model_fields(
    model: type[BaseModel], prefix: str, values: dict[str, Any] | None
) -> list[FormField]:
    fields = []
    for name, info in model.model_fields.items():
        form_field = _form_field(prefix, name, info)
        value = values.get(name) if values is not None else _default(info)
        form_field.value = display(form_field.kind, value)
        fields.append(form_field)
    return fields


def channel_fields(
    channel_type: str,
    config: dict[str, Any] | None = None,
    secrets_set: dict[str, bool] | None = None,
) -> tuple[list[FormField], list[FormField]]:
    """The settings and secret inputs of a channel type, filled from a channel."""
    spec = CHANNEL_SPECS[ChannelType(channel_type)]
    settings = _model_fields(spec.config_model, "config.", config)
    secrets = []
    for name, info in spec.secrets_model.model_fields.items():
        secret = _form_field("secrets.", name, info)
        # Write-only like every secret: never filled in, whatever its shape.
        secret.multiline = secret.kind == "pairs"
        secret.kind, secret.value = "secret", ""
        secret.label = _LABELS.get(secret.name, secret.label)
        secret.secret_set = bool((secrets_set or {}).get(name))
        secrets.append(secret)
    return settings, secrets


def rule_fields(
    values: dict[str, Any] | None, channels: list[dict[str, Any]]
) -> list[FormField]:
    """The inputs of a routing rule, with the tenant's channels to choose from."""
    fields = _model_fields(RuleFields, "", values)
    for form_field in fields:
        if form_field.name == "channel_id":
            form_field.label = "Channel"
            form_field.choices = [(str(c["id"]), c["name"]) for c in channels]
        if form_field.name == "min_severity":
            form_field.label = "Minimum severity"
            form_field.empty_choice = "Any severity"
            form_field.hint = "Match alerts at least this severe."
    return fields


def _number(text: str, kind: str) -> Any:
    # Unparseable text is sent as it is, so the API names the field and problem.
    try:
        number = int(text) if kind == "integer" else float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _pairs(text: str, name: str, problems: dict[str, str]) -> dict[str, str]:
    pairs = {}
    for line in filter(None, (line.strip() for line in text.splitlines())):
        key, colon, value = line.partition(":")
        if not colon:
            problems[name] = f"write each entry as Name: value (not {line!r})"
            continue
        pairs[key.strip()] = value.strip()
    return pairs


def _json(text: str, name: str, problems: dict[str, str]) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        problems[name] = f"not valid JSON: {error}"
        return None


def parse_value(form_field: FormField, form: FormData, problems: dict[str, str]) -> Any:
    """The JSON value of one input; None when left empty."""
    if form_field.kind == "checkbox":
        return form.get(form_field.name) is not None
    if form_field.kind == "multi":
        return [str(v) for v in form.getlist(form_field.name)]
    text = str(form.get(form_field.name) or "").strip()
    if not text:
        return None
    if form_field.kind in ("integer", "number"):
        return _number(text, form_field.kind)
    if form_field.kind == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if form_field.kind == "pairs":
        return _pairs(text, form_field.name, problems)
    if form_field.kind == "json":
        return _json(text, form_field.name, problems)
    if form_field.kind == "select" and all(c.isdigit() for c, _ in form_field.choices):
        return int(text) if text.isdigit() else text
    return text


def _key(form_field: FormField) -> str:
    return form_field.name.rpartition(".")[2]


def settings_body(
    fields: list[FormField], form: FormData, problems: dict[str, str], editing: bool
) -> dict[str, Any]:
    """The ``config`` (or rule) body: empty inputs are left out when creating and
    sent as null (back to the default) when editing."""
    body: dict[str, Any] = {}
    for form_field in fields:
        value = parse_value(form_field, form, problems)
        if value is not None or editing:
            body[_key(form_field)] = value
    return body


def secrets_body(
    fields: list[FormField],
    form: FormData,
    editing: bool,
    problems: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``secrets`` body: only what was typed in, plus null for cleared ones.

    A multi-line secret (``Name: value`` per line) replaces the stored one as a
    whole; a line it cannot read is a problem of that input (never quoted).
    """
    body: dict[str, Any] = {}
    for secret in fields:
        typed = str(form.get(secret.name) or "").strip()
        if typed and secret.multiline:
            found: dict[str, str] = {}
            body[_key(secret)] = _pairs(typed, secret.name, found)
            if found and problems is not None:
                problems[secret.name] = "write each header as Name: value"
        elif typed:
            body[_key(secret)] = typed
        elif editing and form.get(f"clear.{secret.name}") is not None:
            body[_key(secret)] = None
    return body


def keep_input(fields: list[FormField], form: FormData) -> None:
    """Show what was submitted again (never a secret) after a refused save."""
    for form_field in fields:
        if form_field.kind == "secret":
            continue
        if form_field.kind == "checkbox":
            form_field.value = form.get(form_field.name) is not None
        elif form_field.kind == "multi":
            form_field.value = [str(v) for v in form.getlist(form_field.name)]
        else:
            form_field.value = str(form.get(form_field.name) or "")


def place_problems(
    fields: list[FormField], problems: dict[str, str], prefix_labels: dict[str, str]
) -> list[str]:
    """Attach each problem to the input it names; the rest, as sentences."""
    by_name = {form_field.name: form_field for form_field in fields}
    general = []
    for name, problem in problems.items():
        target = _owner(by_name, name)
        if target is not None:
            target.error = f"{target.error}; {problem}" if target.error else problem
        else:
            where = prefix_labels.get(name, name)
            general.append(f"{where}: {problem}" if where else problem)
    return general


def _owner(by_name: dict[str, FormField], name: str) -> FormField | None:
    # "config.to.1" belongs to the input "config.to".
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        found = by_name.get(".".join(parts[:end]))
        if found is not None:
            return found
    return None
