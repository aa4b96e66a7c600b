"""Property-based run of the whole API from its OpenAPI document (schemathesis).

Every operation gets generated requests, valid and invalid, as one tenant; no
response may be a 5xx, use an undocumented status code or break its schema.
The number of examples is bounded so the run takes about a minute.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.app import create_app
from services.api.tenants import create_tenant
from switchboard.settings import Settings

EXAMPLES_PER_OPERATION = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

READINESS_CHECKS = [check for check in CHECKS if check is not not_a_server_error]

app = create_app(Settings())
# Built from the app's own document rather than fetched through the app, which
# would run its lifespan (and need the database) while tests are still collected.
schema = schemathesis.openapi.from_dict(app.openapi())
schema.app = app
schema.location = "/openapi.json"


@pytest.fixture(scope="module")
def api_key(settings: Settings) -> Iterator[str]:
    """Open the app's resources and create the tenant the run acts as."""
    with TestClient(app):
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            _tenant_id, key = create_tenant(conn, f"schemathesis-{uuid.uuid4().hex}")
        yield key


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_fails_and_keeps_to_its_schema(case, api_key: str) -> None:  # noqa: ANN001
    # A 503 is what /readyz is for (an outbox backlog other tests left behind
    # is reason enough); its body must still keep to the schema.
    checks = READINESS_CHECKS if case.path == "/readyz" else CHECKS
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api_key}"}, checks=checks
    )
