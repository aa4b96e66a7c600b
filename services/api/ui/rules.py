"""Routing rule pages: the list in evaluation order, the form, reorder, delete."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from services.api.ui.access import Api, Form
from services.api.ui.channels import not_found
from services.api.ui.client import ApiClient
from services.api.ui.forms import (
    FormField,
    keep_input,
    parse_value,
    place_problems,
    rule_fields,
)
from services.api.ui.render import notice_redirect, render

router = APIRouter(prefix="/ui/rules")

API = "/customer/notification-routing-rules"
CHANNELS_API = "/customer/notification-channels"
# Priorities given when rules that share one must be told apart to reorder them.
PRIORITY_STEP = 10
# What an emptied input means when a rule is saved (the API's own empty values).
_EMPTY = {"lines": [], "multi": [], "text": "", "integer": ""}


def matches(rule: dict[str, Any]) -> list[str]:
    """What a rule matches, in words, one matcher each."""
    described = [
        ("Sites", rule["site_ids"]),
        ("Devices starting with", rule["device_prefixes"]),
        ("Alert types", rule["alert_types"]),
        ("Event kinds", rule["deliver_on"]),
    ]
    found = [f"{label}: {', '.join(values)}" for label, values in described if values]
    if rule.get("min_severity"):
        found.insert(0, f"Severity {rule['min_severity']} or worse")
    return found or ["Every alert"]


async def _channels(api: ApiClient) -> list[dict[str, Any]]:
    return (await api.get(CHANNELS_API)).body["items"]


def evaluation_order(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules in the order the router tries them: priority, then rule id.

    The router breaks ties by rule id (``services.router.matcher``); the page
    sorts by the same key itself, since reordering depends on that order.
    """
    return sorted(rules, key=lambda rule: (rule["priority"], rule["id"]))


async def _rules(api: ApiClient) -> list[dict[str, Any]]:
    return evaluation_order((await api.get(API)).body["items"])


@router.get("", include_in_schema=False)
async def list_page(request: Request, api: Api) -> Response:
    """Every rule in the order the router evaluates them."""
    names = {c["id"]: c["name"] for c in await _channels(api)}
    rules = [
        {
            **rule,
            "matches": matches(rule),
            "channel_name": names.get(rule["channel_id"]),
        }
        for rule in await _rules(api)
    ]
    return render(request, "rules.html", {"nav": "rules", "rules": rules})


def _form_page(
    request: Request,
    fields: list[FormField],
    rule: dict[str, Any] | None,
    problems: dict[str, str] | None = None,
) -> Response:
    context = {
        "nav": "rules",
        "fields": fields,
        "rule": rule,
        "general_problems": place_problems(fields, problems or {}, {"body": ""}),
    }
    status_code = 422 if problems else 200
    return render(request, "rule_form.html", context, status_code=status_code)


@router.get("/new", include_in_schema=False)
async def new_page(request: Request, api: Api) -> Response:
    """An empty rule form."""
    return _form_page(request, rule_fields(None, await _channels(api)), None)


def rule_body(
    fields: list[FormField], form: FormData, problems: dict[str, str], editing: bool
) -> dict[str, Any]:
    """The rule body of a posted form; empty inputs keep the defaults on create."""
    body = {}
    for form_field in fields:
        value = parse_value(form_field, form, problems)
        if value is None and not editing:
            continue
        if value is None:
            value = _EMPTY.get(form_field.kind, None if form_field.optional else "")
        body[form_field.name] = value
    return body


async def _save(
    request: Request,
    api: ApiClient,
    form: FormData,
    rule: dict[str, Any] | None,
) -> Response:
    fields = rule_fields(rule, await _channels(api))
    problems: dict[str, str] = {}
    body = rule_body(fields, form, problems, editing=rule is not None)
    method, path = ("PATCH", f"{API}/{rule['id']}") if rule else ("POST", API)
    answer = await api.call(method, path, body) if not problems else None
    if answer is None or not answer.ok:
        keep_input(fields, form)
        found = problems if answer is None else answer.problems
        return _form_page(request, fields, rule, found)
    verb = "saved" if rule else "created"
    return notice_redirect(
        request, "/ui/rules", f"Rule “{answer.body['name']}” {verb}."
    )


@router.post("/new", include_in_schema=False)
async def create(request: Request, api: Api, form: Form) -> Response:
    """Create the rule through the API, or show its problems by field."""
    return await _save(request, api, form, None)


async def _rule(api: ApiClient, rule_id: uuid.UUID) -> dict[str, Any] | None:
    answer = await api.get(f"{API}/{rule_id}")
    return answer.body if answer.ok else None


@router.get("/{rule_id}", include_in_schema=False)
async def edit_page(request: Request, api: Api, rule_id: uuid.UUID) -> Response:
    """A rule's form."""
    rule = await _rule(api, rule_id)
    if rule is None:
        return not_found(request, "routing rule")
    return _form_page(request, rule_fields(rule, await _channels(api)), rule)


@router.post("/{rule_id}", include_in_schema=False)
async def update(
    request: Request, api: Api, form: Form, rule_id: uuid.UUID
) -> Response:
    """Save a rule's changes through the API."""
    rule = await _rule(api, rule_id)
    if rule is None:
        return not_found(request, "routing rule")
    return await _save(request, api, form, rule)


@router.post("/{rule_id}/enable", include_in_schema=False)
@router.post("/{rule_id}/disable", include_in_schema=False)
async def switch(
    request: Request, api: Api, form: Form, rule_id: uuid.UUID
) -> Response:
    """Enable or disable a rule."""
    enabled = request.url.path.endswith("/enable")
    answer = await api.call("PATCH", f"{API}/{rule_id}", {"enabled": enabled})
    if not answer.ok:
        return not_found(request, "routing rule")
    state = "enabled" if enabled else "disabled"
    return notice_redirect(
        request, "/ui/rules", f"Rule “{answer.body['name']}” {state}."
    )


def new_priorities(
    rules: list[dict[str, Any]], index: int, other: int
) -> dict[str, int]:
    """Priorities that swap rules ``index`` and ``other`` in evaluation order.

    ``rules`` are in evaluation order. Exchanging the two priorities is enough
    unless it leaves a tie that the router breaks (by rule id) the other way;
    then every rule is renumbered in steps instead.
    """
    first, second = rules[index], rules[other]
    order = list(rules)
    order[index], order[other] = second, first
    swapped = {first["id"]: second["priority"], second["id"]: first["priority"]}
    keys = [(swapped.get(rule["id"], rule["priority"]), rule["id"]) for rule in order]
    if keys == sorted(keys):
        return swapped
    wanted = {rule["id"]: (n + 1) * PRIORITY_STEP for n, rule in enumerate(order)}
    return {
        rule["id"]: wanted[rule["id"]]
        for rule in rules
        if rule["priority"] != wanted[rule["id"]]
    }


@router.post("/{rule_id}/move", include_in_schema=False)
async def move(request: Request, api: Api, form: Form, rule_id: uuid.UUID) -> Response:
    """Move a rule one place up or down in evaluation order."""
    rules = await _rules(api)
    index = next((n for n, r in enumerate(rules) if r["id"] == str(rule_id)), None)
    if index is None:
        return not_found(request, "routing rule")
    other = index - 1 if form.get("direction") == "up" else index + 1
    if not 0 <= other < len(rules):
        return notice_redirect(request, "/ui/rules")
    for changed_id, priority in new_priorities(rules, index, other).items():
        await api.call("PATCH", f"{API}/{changed_id}", {"priority": priority})
    return notice_redirect(
        request, "/ui/rules", f"Rule “{rules[index]['name']}” moved."
    )


@router.get("/{rule_id}/delete", include_in_schema=False)
async def delete_page(request: Request, api: Api, rule_id: uuid.UUID) -> Response:
    """Ask before deleting a rule."""
    rule = await _rule(api, rule_id)
    if rule is None:
        return not_found(request, "routing rule")
    return render(request, "rule_delete.html", {"nav": "rules", "rule": rule})


@router.post("/{rule_id}/delete", include_in_schema=False)
async def delete(
    request: Request, api: Api, form: Form, rule_id: uuid.UUID
) -> Response:
    """Delete the rule through the API."""
    answer = await api.call("DELETE", f"{API}/{rule_id}")
    if not answer.ok:
        return not_found(request, "routing rule")
    return notice_redirect(request, "/ui/rules", "Rule deleted.")
