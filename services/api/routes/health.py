"""Liveness, readiness and metrics of the API process."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from services.api.deps import State
from services.api.errors import ErrorBody
from services.api.outbox import backlog

router = APIRouter(tags=["health"])

READY_TIMEOUT_S = 2.0
# Changes reach notify.config within about a second; an older pending row means
# the relay is not running or cannot publish.
OUTBOX_MAX_AGE_S = 30.0


class Health(BaseModel):
    """Whether the process and its dependencies answer."""

    status: str = Field(description="`ok`, or `unavailable` when a dependency fails.")
    database: bool | None = Field(
        None, description="PostgreSQL answered (readyz only)."
    )
    kafka: bool | None = Field(None, description="Kafka answered (readyz only).")
    outbox: bool | None = Field(
        None,
        description="Configuration changes are being published: no pending "
        f"outbox row is older than {OUTBOX_MAX_AGE_S:g} s (readyz only).",
    )
    reason: str | None = Field(None, description="Why the process is not ready.")


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    """Answers as long as the process serves requests."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="The database and Kafka answer and the outbox is published",
    responses={503: {"model": Health, "description": "The process is not ready."}},
)
def readyz(state: State, response: Response) -> Health:
    """Checks PostgreSQL, Kafka and the outbox backlog; 503 with the reason if not."""
    outbox_age_s = _outbox_age_s(state)
    kafka = _kafka_answers(state)
    reasons = []
    if outbox_age_s is None:
        reasons.append(
            f"PostgreSQL does not answer (no working connection within "
            f"{READY_TIMEOUT_S:g} s)"
        )
    if not kafka:
        reasons.append("Kafka does not answer")
    if outbox_age_s is not None and outbox_age_s > OUTBOX_MAX_AGE_S:
        reasons.append(
            f"the oldest unpublished configuration change is {outbox_age_s:.0f} s "
            "old; is the outbox relay running?"
        )
    if reasons:
        response.status_code = 503
    return Health(
        status="unavailable" if reasons else "ok",
        database=outbox_age_s is not None,
        kafka=kafka,
        # Unknown while the database does not answer.
        outbox=None if outbox_age_s is None else outbox_age_s <= OUTBOX_MAX_AGE_S,
        reason="; ".join(reasons) or None,
    )


def _outbox_age_s(state: State) -> float | None:
    """The age of the oldest pending outbox row; None if the database fails."""
    try:
        with state.pool.connection(timeout=READY_TIMEOUT_S) as conn:
            return backlog(conn).oldest_age_s
    except psycopg.Error:
        return None


def _kafka_answers(state: State) -> bool:
    try:
        state.producer.list_topics(timeout=READY_TIMEOUT_S)
        return True
    except Exception:
        return False


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Metrics."},
        404: {"model": ErrorBody},
    },
)
def metrics() -> Response:
    """The process's Prometheus metrics in the text exposition format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
