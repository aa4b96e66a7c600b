"""Channel pages: the list, a form per channel type, enable, delete and test."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from services.api.ui.access import Api, Form
from services.api.ui.client import ApiAnswer, ApiClient
from services.api.ui.forms import (
    TYPE_TITLES,
    FormField,
    channel_fields,
    keep_input,
    place_problems,
    secrets_body,
    settings_body,
)
from services.api.ui.render import notice_redirect, render

router = APIRouter(prefix="/ui/channels")

API = "/customer/notification-channels"
JOBS_API = "/customer/notification-jobs"
# Where a problem is reported for a whole part of the form rather than one input.
PART_LABELS = {"config": "Settings", "secrets": "Secrets", "body": ""}
# A channel form's inputs: name and enabled, settings, secrets.
ChannelForm = tuple[list[FormField], list[FormField], list[FormField]]


def not_found(request: Request, what: str) -> Response:
    """The page for an object that does not exist for this tenant."""
    return render(
        request,
        "message.html",
        {"title": "Not found", "message": f"There is no such {what}."},
        status_code=404,
    )


async def _last_job(api: ApiClient, channel_id: str) -> dict[str, Any] | None:
    answer = await api.get(JOBS_API, channel_id=channel_id, limit=1)
    items = answer.body.get("items", []) if answer.ok else []
    return items[0] if items else None


@router.get("", summary="Channels page", include_in_schema=False)
async def list_page(request: Request, api: Api) -> Response:
    """Every channel with its enabled state and last delivery."""
    channels = (await api.get(API)).body["items"]
    last = await asyncio.gather(*(_last_job(api, c["id"]) for c in channels))
    rows = [{**c, "last_job": job} for c, job in zip(channels, last, strict=True)]
    return render(request, "channels.html", {"channels": rows, "nav": "channels"})


@router.get("/new", include_in_schema=False)
async def choose_type_page(request: Request, api: Api) -> Response:
    """The channel types to choose from."""
    return render(request, "channel_types.html", {"nav": "channels"})


def _head_fields(name: str, enabled: bool) -> list[FormField]:
    return [
        FormField("name", "text", "Name", "A name for people.", True, value=name),
        FormField(
            "enabled", "checkbox", "Enabled", "Rules may deliver to it.", value=enabled
        ),
    ]


def _job_id(value: str | None) -> str:
    """The test job to follow: a job id, never a path smuggled into the page."""
    try:
        return str(uuid.UUID(value or ""))
    except ValueError:
        return ""


def _form_page(
    request: Request,
    channel_type: str,
    fields: ChannelForm,
    channel: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
) -> Response:
    head, settings, secrets = fields
    general = place_problems(head + settings + secrets, problems or {}, PART_LABELS)
    context = {
        "nav": "channels",
        "channel_type": channel_type,
        "type_title": TYPE_TITLES[channel_type],
        "head": head,
        "settings": settings,
        "secrets": secrets,
        "channel": channel,
        "general_problems": general,
        "test_job": _job_id(request.query_params.get("test_job")),
    }
    return render(
        request, "channel_form.html", context, status_code=422 if problems else 200
    )


@router.get("/new/{channel_type}", include_in_schema=False)
async def new_page(request: Request, api: Api, channel_type: str) -> Response:
    """An empty form for a new channel of ``channel_type``."""
    if channel_type not in TYPE_TITLES:
        return not_found(request, "channel type")
    settings, secrets = channel_fields(channel_type)
    return _form_page(
        request, channel_type, (_head_fields("", True), settings, secrets)
    )


def _refused(
    request: Request,
    form: FormData,
    answer_problems: dict[str, str],
    fields: ChannelForm,
    channel_type: str,
    channel: dict[str, Any] | None = None,
) -> Response:
    head, settings, secrets = fields
    keep_input(head + settings, form)
    return _form_page(request, channel_type, fields, channel, answer_problems)


@router.post("/new/{channel_type}", include_in_schema=False)
async def create(request: Request, api: Api, form: Form, channel_type: str) -> Response:
    """Create the channel through the API, or show its problems by field."""
    if channel_type not in TYPE_TITLES:
        return not_found(request, "channel type")
    head = _head_fields("", True)
    settings, secrets = channel_fields(channel_type)
    problems: dict[str, str] = {}
    body = {
        "channel_type": channel_type,
        "name": str(form.get("name") or ""),
        "enabled": form.get("enabled") is not None,
        "config": settings_body(settings, form, problems, editing=False),
        "secrets": secrets_body(secrets, form, editing=False, problems=problems),
    }
    answer = await api.call("POST", API, body) if not problems else None
    if answer is None or not answer.ok:
        found = problems if answer is None else answer.problems
        return _refused(request, form, found, (head, settings, secrets), channel_type)
    url = f"/ui/channels/{answer.body['id']}"
    return notice_redirect(request, url, f"Channel “{answer.body['name']}” created.")


async def _channel(api: ApiClient, channel_id: uuid.UUID) -> dict[str, Any] | None:
    answer = await api.get(f"{API}/{channel_id}")
    return answer.body if answer.ok else None


def _filled(channel: dict[str, Any]) -> ChannelForm:
    settings, secrets = channel_fields(
        channel["channel_type"], channel["config"], channel["secrets_set"]
    )
    return _head_fields(channel["name"], channel["enabled"]), settings, secrets


@router.get("/{channel_id}", include_in_schema=False)
async def edit_page(request: Request, api: Api, channel_id: uuid.UUID) -> Response:
    """A channel's form, its actions and the outcome of a test just sent."""
    channel = await _channel(api, channel_id)
    if channel is None:
        return not_found(request, "channel")
    return _form_page(request, channel["channel_type"], _filled(channel), channel)


@router.post("/{channel_id}", include_in_schema=False)
async def update(
    request: Request, api: Api, form: Form, channel_id: uuid.UUID
) -> Response:
    """Save changes through the API, or show its problems by field."""
    channel = await _channel(api, channel_id)
    if channel is None:
        return not_found(request, "channel")
    head, settings, secrets = _filled(channel)
    problems: dict[str, str] = {}
    body = {
        "name": str(form.get("name") or ""),
        "enabled": form.get("enabled") is not None,
        "config": settings_body(settings, form, problems, editing=True),
        "secrets": secrets_body(secrets, form, editing=True, problems=problems),
    }
    answer = (
        await api.call("PATCH", f"{API}/{channel_id}", body) if not problems else None
    )
    if answer is None or not answer.ok:
        found = problems if answer is None else answer.problems
        fields = (head, settings, secrets)
        return _refused(request, form, found, fields, channel["channel_type"], channel)
    return notice_redirect(request, f"/ui/channels/{channel_id}", "Changes saved.")


def _back(form: FormData, default: str) -> str:
    target = str(form.get("back") or "")
    return target if target.startswith("/ui/") and "//" not in target else default


def _problem_text(answer: ApiAnswer) -> str:
    return "; ".join(answer.problems.values()) or f"refused ({answer.status})"


@router.post("/{channel_id}/enable", include_in_schema=False)
@router.post("/{channel_id}/disable", include_in_schema=False)
async def switch(
    request: Request, api: Api, form: Form, channel_id: uuid.UUID
) -> Response:
    """Enable or disable a channel, then go back where the button was."""
    action = request.url.path.rsplit("/", 1)[1]
    answer = await api.call("POST", f"{API}/{channel_id}/{action}")
    back = _back(form, "/ui/channels")
    if not answer.ok:
        return notice_redirect(request, back, f"Not changed: {_problem_text(answer)}")
    state = "enabled" if answer.body["enabled"] else "disabled"
    return notice_redirect(request, back, f"“{answer.body['name']}” {state}.")


@router.post("/{channel_id}/test", include_in_schema=False, name="channel_test")
async def send_test(
    request: Request, api: Api, form: Form, channel_id: uuid.UUID
) -> Response:
    """Send a test through the pipeline and show the channel page following it."""
    answer = await api.call("POST", f"{API}/{channel_id}/test")
    page = f"/ui/channels/{channel_id}"
    if not answer.ok:
        return notice_redirect(request, page, f"Test not sent: {_problem_text(answer)}")
    return notice_redirect(
        request, f"{page}?test_job={answer.body['job_id']}#test", "Test queued."
    )


async def _feeding_rules(api: ApiClient, channel_id: uuid.UUID) -> list[dict]:
    rules = (await api.get("/customer/notification-routing-rules")).body["items"]
    return [rule for rule in rules if rule["channel_id"] == str(channel_id)]


@router.get("/{channel_id}/delete", include_in_schema=False)
async def delete_page(request: Request, api: Api, channel_id: uuid.UUID) -> Response:
    """Ask before deleting; name the rules that go with the channel."""
    channel = await _channel(api, channel_id)
    if channel is None:
        return not_found(request, "channel")
    context = {
        "nav": "channels",
        "channel": channel,
        "rules": await _feeding_rules(api, channel_id),
    }
    return render(request, "channel_delete.html", context)


@router.post("/{channel_id}/delete", include_in_schema=False)
async def delete(
    request: Request, api: Api, form: Form, channel_id: uuid.UUID
) -> Response:
    """Delete the channel (and its rules) through the API."""
    answer = await api.call("DELETE", f"{API}/{channel_id}")
    if not answer.ok:
        return not_found(request, "channel")
    return notice_redirect(request, "/ui/channels", "Channel deleted.")
