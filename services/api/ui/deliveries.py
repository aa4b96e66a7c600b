"""Delivery pages: recent jobs, filtered; one job with its attempts; retry."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.api.ui.access import Api, Form
from services.api.ui.channels import not_found
from services.api.ui.client import ApiClient
from services.api.ui.render import notice_redirect, render, when
from switchboard.domain import JobState

router = APIRouter(prefix="/ui/deliveries")

API = "/customer/notification-jobs"
CHANNELS_API = "/customer/notification-channels"
PAGE_SIZE = 50
STATES = [str(state) for state in JobState]
# States after which nothing more happens unless someone retries.
FINAL_STATES = {"delivered", "dead", "suppressed", "cancelled"}


def _chosen(value: str | None, allowed: set[str]) -> str:
    return value if value in allowed else ""


async def _channel_names(api: ApiClient) -> dict[str, str]:
    channels = (await api.get(CHANNELS_API)).body["items"]
    return {c["id"]: c["name"] for c in channels}


@router.get("", include_in_schema=False)
async def list_page(request: Request, api: Api) -> Response:
    """The newest jobs, filtered by status and channel, a page at a time."""
    names = await _channel_names(api)
    query = request.query_params
    status = _chosen(query.get("status"), set(STATES))
    channel_id = _chosen(query.get("channel_id"), set(names))
    answer = await api.get(
        API,
        state=status,
        channel_id=channel_id,
        cursor=query.get("cursor"),
        limit=PAGE_SIZE,
    )
    page = answer.body if answer.ok else {"items": [], "next_cursor": None}
    context = {
        "nav": "deliveries",
        "jobs": page["items"],
        "next_cursor": page["next_cursor"],
        "names": names,
        "states": STATES,
        "status": status,
        "channel_id": channel_id,
        "problem": "; ".join(answer.problems.values()),
    }
    return render(request, "deliveries.html", context)


async def _job(api: ApiClient, job_id: uuid.UUID) -> dict[str, Any] | None:
    answer = await api.get(f"{API}/{job_id}")
    return answer.body if answer.ok else None


@router.get("/{job_id}", include_in_schema=False)
async def job_page(request: Request, api: Api, job_id: uuid.UUID) -> Response:
    """One job and every attempt of it."""
    job = await _job(api, job_id)
    if job is None:
        return not_found(request, "delivery (yet: a new job appears within seconds)")
    names = await _channel_names(api)
    context = {
        "nav": "deliveries",
        "job": job,
        "channel_name": names.get(job["channel_id"]),
        "final_states": FINAL_STATES,
        "follow": request.query_params.get("follow") == "1",
    }
    return render(request, "job.html", context)


def job_state(job: dict[str, Any] | None) -> dict[str, Any]:
    """What a page following a job needs: its state and last outcome."""
    if job is None:
        # The recorder has not written the job yet; it is on its way.
        return {"state": "queued", "final": False, "recorded": False}
    return {
        "state": job["state"],
        "final": job["state"] in FINAL_STATES,
        "recorded": True,
        "attempts": job["attempts"],
        "status_code": job["last_status_code"],
        "reason": job["last_reason"],
        "error": job["last_error"],
        "updated_at": when(job["updated_at"]),
    }


@router.get("/{job_id}/state", include_in_schema=False)
async def state(api: Api, job_id: uuid.UUID) -> Response:
    """A job's state as JSON, for pages that follow it as it changes."""
    return JSONResponse(job_state(await _job(api, job_id)))


@router.post("/{job_id}/retry", include_in_schema=False)
async def retry(request: Request, api: Api, form: Form, job_id: uuid.UUID) -> Response:
    """Queue a dead job again through the API."""
    answer = await api.call("POST", f"{API}/{job_id}/retry")
    page = f"/ui/deliveries/{job_id}"
    if not answer.ok:
        problem = "; ".join(answer.problems.values())
        return notice_redirect(request, page, f"Not retried: {problem}")
    return notice_redirect(
        request,
        f"{page}?follow=1",
        f"Retry queued as attempt {answer.body['attempt']}.",
    )
