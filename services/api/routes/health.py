"""Liveness, readiness and metrics of the API process."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from services.api.deps import State
from services.api.errors import ErrorBody

router = APIRouter(tags=["health"])

READY_TIMEOUT_S = 2.0


class Health(BaseModel):
    """Whether the process and its dependencies answer."""

    status: str = Field(description="`ok`, or `unavailable` when a dependency fails.")
    database: bool | None = Field(
        None, description="PostgreSQL answered (readyz only)."
    )
    kafka: bool | None = Field(None, description="Kafka answered (readyz only).")


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    """Answers as long as the process serves requests."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="The database and Kafka answer",
    responses={503: {"model": Health, "description": "A dependency does not answer."}},
)
def readyz(state: State, response: Response) -> Health:
    """Checks PostgreSQL and Kafka; 503 when either does not answer."""
    database, kafka = _database_answers(state), _kafka_answers(state)
    if not (database and kafka):
        response.status_code = 503
    status = "ok" if database and kafka else "unavailable"
    return Health(status=status, database=database, kafka=kafka)


def _database_answers(state: State) -> bool:
    try:
        with state.pool.connection(timeout=READY_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


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
