"""Templates that would exhaust the deliverer are refused when a channel is saved."""

from __future__ import annotations

import pytest
from api_support import CHANNELS, TenantKey

from services.api.models.channels import EXAMPLES


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        # Recursed until RecursionError, which escaped as a 500.
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "macro"),
        # Would have allocated 10 GB before the output cap was checked.
        ('{{ "a" * 10**10 }}', "LimitExceeded"),
    ],
)
def test_an_unbounded_body_template_gets_a_422_naming_the_field(
    tenant: TenantKey, template: str, problem: str
) -> None:
    body = {
        "channel_type": "email",
        "name": "NOC mail",
        "config": {**EXAMPLES["email"]["config"], "body_template": template},
        "secrets": EXAMPLES["email"]["secrets"],
    }

    response = tenant.client.post(CHANNELS, json=body)

    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["field"] == "config.body_template"
    assert problem in response.text
