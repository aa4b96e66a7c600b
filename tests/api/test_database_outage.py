"""The API through a PostgreSQL restart and an outage, on a server of its own.

A restart leaves every pooled connection dead; none of them may turn a request
into a 500. While the server is down, requests answer a quick 503 with the
usual error body, logged once without a traceback; /readyz says what is wrong;
and the requests metric counts the 503s like any other answer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from api_support import CHANNELS
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from services.api.app import APPLICATION_NAME, create_app
from services.api.errors import DATABASE_UNAVAILABLE
from services.api.tenants import create_tenant, issue_key, revoke_key
from switchboard.settings import Settings
from switchboard.stack import PostgresComponent

# The pool waits 3 s for a connection; anything near its old 30 s is a hang.
QUICK_S = 8.0
RECOVERY_S = 20.0


@pytest.fixture
def api(settings: Settings, own_postgres: PostgresComponent) -> Iterator[TestClient]:
    """A client of an API over the private database and the shared Kafka."""
    private = settings.model_copy(
        update={"database_url": own_postgres.settings.database_url}
    )
    with TestClient(create_app(private)) as client:
        yield client


def _keys(database_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """Headers with a working key and with a revoked key of one tenant."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tenant_id, key = create_tenant(conn, f"outage-{uuid.uuid4().hex}")
        revoked = issue_key(conn, tenant_id)
        revoke_key(conn, revoked)
    return (
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"Bearer {revoked}"},
    )


def _api_sessions(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (APPLICATION_NAME,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _requests(route: str, status: int) -> float:
    labels = {"method": "GET", "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("switchboard_api_requests_total", labels) or 0.0


def test_after_a_restart_stale_pooled_connections_give_no_500(
    api: TestClient, own_postgres: PostgresComponent
) -> None:
    url = own_postgres.settings.database_url
    good, revoked = _keys(url)
    pool = api.app.state.api.pool  # type: ignore[attr-defined]
    held = [pool.getconn() for _ in range(6)]
    for conn in held:
        pool.putconn(conn)
    assert _api_sessions(url) == 6

    own_postgres.down()
    own_postgres.up()

    answers = []
    started = time.monotonic()
    for _ in range(8):
        answers.append(api.get(CHANNELS, headers=good).status_code)
        answers.append(api.get(CHANNELS, headers=revoked).status_code)
    assert answers == [200, 401] * 8
    assert time.monotonic() - started < QUICK_S


def test_an_outage_is_a_quick_503_logged_once_and_counted(
    api: TestClient,
    own_postgres: PostgresComponent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good, revoked = _keys(own_postgres.settings.database_url)
    assert api.get(CHANNELS, headers=good).status_code == 200
    refused_before = _requests(CHANNELS, 503)

    own_postgres.down()
    caplog.clear()
    started = time.monotonic()
    response = api.get(CHANNELS, headers=good)
    took_s = time.monotonic() - started
    again = api.get(CHANNELS, headers=revoked)

    assert response.status_code == 503, response.text
    assert took_s < QUICK_S
    assert response.json() == {
        "detail": [{"field": "request", "problem": DATABASE_UNAVAILABLE}]
    }
    assert response.headers["retry-after"] == "5"
    assert again.status_code == 503
    assert _requests(CHANNELS, 503) == refused_before + 2
    ours = [r for r in caplog.records if r.name.startswith("services.")]
    assert [(r.levelno, r.getMessage()) for r in ours] == [
        (logging.WARNING, "database unavailable; request answered 503")
    ]
    assert ours[0].exc_info is None
    assert "outage" not in ours[0].error  # the password is never logged

    own_postgres.up()
    deadline = time.monotonic() + RECOVERY_S
    while (status := api.get(CHANNELS, headers=good).status_code) != 200:
        assert status == 503
        assert time.monotonic() < deadline, "the API did not recover"
        time.sleep(0.5)
    assert api.get(CHANNELS, headers=revoked).status_code == 401


def test_readyz_is_503_with_reasons_while_postgres_is_down(
    api: TestClient, own_postgres: PostgresComponent
) -> None:
    own_postgres.down()
    before = _requests("/readyz", 503)

    response = api.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": False,
        "kafka": True,
        "outbox": None,
        "reason": "PostgreSQL does not answer (no working connection within 2 s)",
    }
    assert _requests("/readyz", 503) == before + 1


def test_readyz_names_both_when_postgres_and_kafka_are_down(
    settings: Settings, own_postgres: PostgresComponent
) -> None:
    private = settings.model_copy(
        update={
            "database_url": own_postgres.settings.database_url,
            "kafka_bootstrap": "127.0.0.1:1",
        }
    )
    with TestClient(create_app(private)) as client:
        own_postgres.down()
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert (body["database"], body["kafka"], body["outbox"]) == (False, False, None)
    assert body["reason"] == (
        "PostgreSQL does not answer (no working connection within 2 s); "
        "Kafka does not answer"
    )


def test_an_unexpected_error_is_one_logged_500_and_counted(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    @app.get("/test-only/fails")
    def fails() -> None:
        raise RuntimeError("a bug")

    before = _requests("/test-only/fails", 500)
    with TestClient(app) as client:
        caplog.clear()
        response = client.get("/test-only/fails")

    assert response.status_code == 500
    assert response.json() == {
        "detail": [{"field": "request", "problem": "internal error"}]
    }
    assert _requests("/test-only/fails", 500) == before + 1
    failures = [r for r in caplog.records if r.exc_info is not None]
    assert [(r.name, r.getMessage()) for r in failures] == [
        ("services.api.errors", "request failed")
    ]
