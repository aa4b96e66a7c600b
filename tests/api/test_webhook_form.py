"""The web page's webhook form: secret headers are write-only there too.

The page is served by the API app and calls the API in-process, so these
requests go through the same routes, validation and database as an API client.
"""

from __future__ import annotations

import re

from api_support import TenantKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.datastructures import FormData

from services.api.ui.forms import channel_fields, secrets_body

TOKEN = "form-t0ken-3e8a1f"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def test_secret_headers_are_a_write_only_multi_line_input() -> None:
    settings, secrets = channel_fields("webhook", None, {"secret_headers": True})
    [headers] = [f for f in secrets if f.name == "secrets.secret_headers"]

    assert (headers.kind, headers.multiline, headers.value) == ("secret", True, "")
    assert headers.secret_set is True
    assert "Headers" not in headers.label
    assert [f.name for f in settings if f.kind == "pairs"] == ["config.headers"]
    typed = FormData([(headers.name, f"Authorization: Bearer {TOKEN}\nX-Api-Key: k")])
    assert secrets_body(secrets, typed, editing=False) == {
        "secret_headers": {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": "k"}
    }
    problems: dict[str, str] = {}
    garbled = FormData([(headers.name, f"Bearer {TOKEN}")])
    secrets_body(secrets, garbled, editing=False, problems=problems)
    assert list(problems) == [headers.name]
    assert TOKEN not in problems[headers.name]


def _signed_in(app: FastAPI, tenant: TenantKey) -> TestClient:
    # The session cookie is Secure, so the page is reached over https.
    client = TestClient(app, base_url="https://testserver")
    csrf = CSRF.search(client.get("/ui/sign-in").text)
    assert csrf is not None
    signed = client.post(
        "/ui/sign-in",
        data={"csrf": csrf.group(1), "api_key": tenant.key, "next": "/ui/channels"},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    return client


def test_the_page_creates_secret_headers_and_never_shows_them(
    api_app: FastAPI, tenant: TenantKey
) -> None:
    client = _signed_in(api_app, tenant)
    form = client.get("/ui/channels/new/webhook")
    assert 'name="secrets.secret_headers"' in form.text
    csrf = CSRF.search(form.text)
    assert csrf is not None

    created = client.post(
        "/ui/channels/new/webhook",
        data={
            "csrf": csrf.group(1),
            "name": "Form hook",
            "enabled": "on",
            "config.url": "https://hooks.example.com/form",
            "secrets.secret_headers": f"Authorization: Bearer {TOKEN}",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    page = client.get(created.headers["location"])

    assert TOKEN not in page.text
    status = re.search(
        r'id="f-secrets-secret-headers-status">\s*<span class="badge (\w+)"', page.text
    )
    assert status is not None and status.group(1) == "set"
    [channel] = tenant.client.get("/customer/notification-channels").json()["items"]
    assert channel["secrets_set"]["secret_headers"] is True
    assert channel["config"]["headers"] == {}


def test_a_credential_in_the_plain_headers_is_refused_beside_the_input(
    api_app: FastAPI, tenant: TenantKey
) -> None:
    client = _signed_in(api_app, tenant)
    csrf = CSRF.search(client.get("/ui/channels/new/webhook").text)
    assert csrf is not None

    refused = client.post(
        "/ui/channels/new/webhook",
        data={
            "csrf": csrf.group(1),
            "name": "Leaky hook",
            "config.url": "https://hooks.example.com/form",
            "config.headers": f"Authorization: Bearer {TOKEN}",
        },
    )

    assert refused.status_code == 422
    error = re.search(r'id="f-config-headers-error"[^>]*>([^<]+)<', refused.text)
    assert error is not None and "secret_headers" in error.group(1)
