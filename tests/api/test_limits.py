"""Size limits: a request body is cut off while it is read, channel fields are
bounded, and a change too large for Kafka is refused before it is stored.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import uvicorn
from api_support import CHANNELS, WEBHOOK, TenantKey

from services.api.app import MAX_BODY_BYTES, create_app
from switchboard.settings import Settings

HUGE_BODY_BYTES = 50 * 1024 * 1024
CHUNK_BYTES = 64 * 1024


def _webhook(**config: object) -> dict:
    return {**WEBHOOK, "config": {**WEBHOOK["config"], **config}}


def _fields(response_json: dict) -> list[str]:
    return [problem["field"] for problem in response_json["detail"]]


def test_a_body_over_the_limit_is_413_naming_the_body(tenant: TenantKey) -> None:
    padding = "x" * (MAX_BODY_BYTES + 1)

    response = tenant.client.post(CHANNELS, json={**WEBHOOK, "name": padding})

    assert response.status_code == 413, response.text
    assert _fields(response.json()) == ["body"]
    assert str(MAX_BODY_BYTES) in response.json()["detail"][0]["problem"]


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[int]:
    """The port of a real uvicorn server of the API app on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    while not instance.started and thread.is_alive():
        time.sleep(0.05)
    assert instance.started, "the API server did not start"
    yield port
    instance.should_exit = True
    thread.join(timeout=15)


def _status_after_partial_upload(port: int, headers: str, sent: bytes) -> bytes:
    """Send the head and part of a body, never the rest; the whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(headers.encode() + b"\r\n" + sent)
        answer = b""
        while not answer.endswith(b"}"):
            chunk = client.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_huge_upload_is_refused_without_reading_it_all(
    server: int, declared: bool
) -> None:
    head = f"POST {CHANNELS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "Content-Type: application/json\r\n"
    if declared:
        head += f"Content-Length: {HUGE_BODY_BYTES}\r\n"
        sent = b"x" * CHUNK_BYTES
    else:
        head += "Transfer-Encoding: chunked\r\n"
        chunk = f"{CHUNK_BYTES:x}\r\n".encode() + b"x" * CHUNK_BYTES + b"\r\n"
        # Past the limit, yet far from the end of the 50 MB that would follow.
        sent = chunk * (MAX_BODY_BYTES // CHUNK_BYTES + 2)

    answer = _status_after_partial_upload(server, head, sent)

    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"field":"body"' in answer


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_webhook(url="https://hooks.example.com/" + "a" * 100_000), "config.url"),
        (_webhook(url="https://hooks.example.com/" + "a" * 2048), "config.url"),
        (_webhook(headers={f"X-H{i}": "v" for i in range(51)}), "config.headers"),
        (_webhook(headers={"X-" + "n" * 255: "v"}), "config.headers"),
        (_webhook(headers={"X-Long": "v" * 4097}), "config.headers"),
        (
            {
                "channel_type": "slack",
                "name": "slack",
                "secrets": {"webhook_url": "https://hooks.slack.com/" + "a" * 2048},
            },
            "secrets.webhook_url",
        ),
    ],
    ids=[
        "url-100k",
        "url-over-2048",
        "51-headers",
        "long-header-name",
        "long-header-value",
        "slack-url",
    ],
)
def test_channel_fields_are_bounded(tenant: TenantKey, body: dict, field: str) -> None:
    response = tenant.client.post(CHANNELS, json=body)

    assert response.status_code == 422, response.text
    assert field in _fields(response.json()), response.text


def test_fields_at_their_limits_are_accepted(tenant: TenantKey) -> None:
    body = _webhook(
        url="https://hooks.example.com/" + "a" * (2048 - 26),
        headers={f"X-{i}-" + "n" * 250: "v" * 4096 for i in range(50)},
    )

    assert len(json.dumps(body)) < MAX_BODY_BYTES
    assert tenant.create_channel(body)["config"]["url"] == body["config"]["url"]


def test_a_change_too_large_for_the_pipeline_is_refused_and_not_stored(
    tenant: TenantKey, conn: psycopg.Connection
) -> None:
    # Each quote is escaped in the stored JSON, doubling the encoded size.
    body = _webhook(headers={f"X-{i}": '"' * 4096 for i in range(50)})

    response = tenant.client.post(CHANNELS, json=body)

    assert response.status_code == 422, response.text
    assert _fields(response.json()) == ["body"]
    stored = conn.execute(
        "SELECT count(*) FROM notification_channels WHERE tenant_id = %s",
        (tenant.id,),
    ).fetchone()
    assert stored == (0,)
