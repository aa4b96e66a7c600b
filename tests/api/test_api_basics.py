"""Authentication, tenant commands, error bodies, health and the OpenAPI document."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from api_support import CHANNELS, JOBS, RULES, WEBHOOK, TenantKey
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.models.channels import EXAMPLES
from services.api.tenants import revoke_key
from switchboard.domain import ChannelType
from switchboard.settings import Settings

SWITCHBOARD = os.path.join(os.path.dirname(sys.executable), "switchboard")


@pytest.mark.parametrize("header", [None, "Bearer sbk_unknown", "Basic abc", "Bearer "])
def test_requests_without_a_valid_key_get_401(
    anonymous: TestClient, header: str
) -> None:
    headers = {"Authorization": header} if header is not None else {}

    response = anonymous.get(CHANNELS, headers=headers)

    assert response.status_code == 401
    assert response.json()["detail"][0]["field"] == "Authorization"


def test_a_revoked_key_is_refused(tenant: TenantKey, conn: psycopg.Connection) -> None:
    assert tenant.client.get(CHANNELS).status_code == 200

    revoke_key(conn, tenant.key[:12])

    assert tenant.client.get(CHANNELS).status_code == 401


def test_keys_are_stored_hashed(tenant: TenantKey, conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT key_hash, key_prefix FROM api_keys WHERE tenant_id = %s", (tenant.id,)
    ).fetchall()

    assert len(rows) == 1
    assert tenant.key not in rows[0][0]
    assert tenant.key.startswith(rows[0][1])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SWITCHBOARD, "tenant", *args], capture_output=True, text=True, timeout=60
    )


def test_tenant_commands_issue_and_revoke_keys(
    anonymous: TestClient, unique: str
) -> None:
    created = _cli("create", f"cli-{unique}")
    assert created.returncode == 0, created.stderr
    first = dict(line.split(" ", 1) for line in created.stdout.splitlines())["api_key"]

    second = _cli("key", f"cli-{unique}").stdout.split()[-1]
    revoked = _cli("revoke", first[:12])
    duplicate = _cli("create", f"cli-{unique}")

    def status(key: str) -> int:
        return anonymous.get(
            CHANNELS, headers={"Authorization": f"Bearer {key}"}
        ).status_code

    assert revoked.returncode == 0, revoked.stderr
    assert (status(first), status(second)) == (401, 200)
    assert duplicate.returncode == 1
    assert "exists already" in duplicate.stderr


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/customer/integrations", "/customer/integrations/1"])
def test_there_is_no_legacy_integrations_endpoint(
    tenant: TenantKey, method: str, path: str
) -> None:
    response = getattr(tenant.client, method)(path)

    assert response.status_code == 404
    assert response.json()["detail"][0]["field"] == "path"


@pytest.mark.parametrize(
    ("path", "content", "field"),
    [
        (CHANNELS, b'{"channel_type": "webhook", ', "body"),
        (CHANNELS, b"[1, 2, 3]", "body"),
        (CHANNELS, b"\xff\xfe not utf-8", "body"),
        (RULES, b'{"channel_id": "x", "name": "n", "priority": 1e400}', "priority"),
        (
            RULES,
            b'{"channel_id": "x", "name": "n", "priority": ' + b"9" * 5000 + b"}",
            "body",
        ),
    ],
)
def test_malformed_bodies_are_4xx_naming_the_problem(
    tenant: TenantKey, path: str, content: bytes, field: str
) -> None:
    response = tenant.client.post(
        path, content=content, headers={"Content-Type": "application/json"}
    )

    assert 400 <= response.status_code < 500, response.text
    assert field in [p["field"] for p in response.json()["detail"]], response.text


def test_nan_in_a_config_is_refused(tenant: TenantKey) -> None:
    content = (
        b'{"channel_type": "webhook", "name": "n", "config": '
        b'{"url": "https://h.example.com/", "timeout_s": NaN}}'
    )

    response = tenant.client.post(
        CHANNELS, content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422, response.text


def test_health_readiness_and_metrics(anonymous: TestClient, tenant: TenantKey) -> None:
    tenant.client.get(JOBS)

    assert anonymous.get("/healthz").json()["status"] == "ok"
    assert anonymous.get("/readyz").json() == {
        "status": "ok",
        "database": True,
        "kafka": True,
        "outbox": True,
        "reason": None,
    }
    assert "switchboard_api_requests_total" in anonymous.get("/metrics").text


def test_openapi_documents_every_channel_type_with_an_example(
    anonymous: TestClient,
) -> None:
    document = anonymous.get("/openapi.json").json()

    create = document["paths"][CHANNELS]["post"]["requestBody"]["content"]
    examples = create["application/json"]["examples"]
    schemas = document["components"]["schemas"]

    assert set(examples) == {str(t) for t in ChannelType}
    assert set(EXAMPLES) == {str(t) for t in ChannelType}
    for channel_type in ChannelType:
        title = next(n for n in schemas if n.lower() == f"{channel_type}channelcreate")
        assert schemas[title]["additionalProperties"] is False


def test_openapi_describes_every_operation_parameter_and_api_field(
    anonymous: TestClient,
) -> None:
    document = anonymous.get("/openapi.json").json()

    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not operation.get("description"):
                missing.append(f"{method} {path}")
            missing += [
                f"{method} {path} ?{p['name']}"
                for p in operation.get("parameters", [])
                if not p.get("description") and p["in"] != "path"
            ]
    # Channel config and secrets models belong to the channel packages, which
    # document their own fields; this checks the API's own models.
    schemas = document["components"]["schemas"]
    for name in _api_model_names() & set(schemas):
        properties = schemas[name].get("properties", {})
        missing += [
            f"{name}.{f}" for f, spec in properties.items() if "description" not in spec
        ]

    assert missing == []


def _api_model_names() -> set[str]:
    from pydantic import BaseModel

    from services.api import errors
    from services.api.models import channels, jobs, rules
    from services.api.routes import health

    names = {
        model.__name__
        for module in (errors, channels, jobs, rules, health)
        for model in vars(module).values()
        if isinstance(model, type)
        and issubclass(model, BaseModel)
        and model.__module__ == module.__name__
        and not model.__name__.startswith("_")
    }
    generated = [*channels.CREATE_MODELS.values(), *channels.PUBLIC_MODELS.values()]
    return names | {model.__name__ for model in generated}


def test_the_webhook_example_is_a_valid_channel(tenant: TenantKey) -> None:
    assert tenant.create_channel(WEBHOOK)["channel_type"] == "webhook"


def test_readyz_is_503_when_kafka_does_not_answer(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})

    with TestClient(create_app(unreachable)) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": True,
        "kafka": False,
        "outbox": True,
        "reason": "Kafka does not answer",
    }
