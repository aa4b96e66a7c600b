"""Channel CRUD over the real database: validation, secrets, isolation, targets."""

from __future__ import annotations

import copy
import logging
import uuid

import psycopg
import pytest
from api_support import WEBHOOK, TenantKey

from services.api.models.channels import EXAMPLES

BASE = "/customer/notification-channels"


def _create(tenant: TenantKey, body: dict) -> dict:
    response = tenant.client.post(BASE, json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("channel_type", sorted(EXAMPLES))
def test_every_channel_type_round_trips(tenant: TenantKey, channel_type: str) -> None:
    body = {
        "channel_type": channel_type,
        "name": f"ex {channel_type}",
        **EXAMPLES[channel_type],
    }
    created = _create(tenant, body)

    read = tenant.client.get(f"{BASE}/{created['id']}").json()

    assert read == created
    assert read["channel_type"] == channel_type
    for name, value in EXAMPLES[channel_type]["config"].items():
        assert read["config"][name] == value
    assert read["secrets_set"] == {
        name: name in EXAMPLES[channel_type]["secrets"] for name in read["secrets_set"]
    }
    assert "secrets" not in read


def test_secrets_are_encrypted_at_rest_and_never_returned(
    tenant: TenantKey, conn: psycopg.Connection
) -> None:
    created = _create(tenant, WEBHOOK)
    secret = WEBHOOK["secrets"]["signing_secret"]

    listed = tenant.client.get(BASE).text
    row = conn.execute(
        "SELECT config::text, secrets_encrypted FROM notification_channels"
        " WHERE id = %s",
        (created["id"],),
    ).fetchone()

    assert secret not in listed
    assert secret not in row[0] and secret not in row[1]
    assert row[1].startswith("gAAAA")
    outbox = conn.execute(
        "SELECT payload FROM config_outbox WHERE message_key = %s",
        (f"channel:{created['id']}",),
    ).fetchone()
    assert secret.encode() not in outbox[0]


def test_partial_update_merges_config_and_keeps_secrets(tenant: TenantKey) -> None:
    created = _create(tenant, WEBHOOK)
    url = f"{BASE}/{created['id']}"

    response = tenant.client.patch(
        url, json={"name": "renamed", "config": {"headers": {"X-Env": "prod"}}}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "renamed"
    assert body["config"]["url"] == WEBHOOK["config"]["url"]
    assert body["config"]["headers"] == {"X-Env": "prod"}
    assert body["secrets_set"] == {"signing_secret": True, "secret_headers": False}

    cleared = tenant.client.patch(url, json={"secrets": {"signing_secret": None}})
    assert cleared.json()["secrets_set"] == {
        "signing_secret": False,
        "secret_headers": False,
    }


def test_update_names_the_merged_field_that_is_wrong(tenant: TenantKey) -> None:
    created = _create(tenant, WEBHOOK)

    response = tenant.client.patch(
        f"{BASE}/{created['id']}", json={"config": {"url": "not a url"}}
    )

    assert response.status_code == 422
    assert [p["field"] for p in response.json()["detail"]] == ["config.url"]


def test_removing_a_required_secret_is_refused(tenant: TenantKey) -> None:
    body = {"channel_type": "slack", "name": "s", **EXAMPLES["slack"]}
    created = _create(tenant, body)

    response = tenant.client.patch(
        f"{BASE}/{created['id']}", json={"secrets": {"webhook_url": None}}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "secrets.webhook_url"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"config": {"url": "https://x.example/", "surprise": 1}}, "config.surprise"),
        ({"channel_type": "carrier-pigeon"}, "channel_type"),
        ({"config": {"url": "ftp://x.example/"}}, "config.url"),
        ({"secrets": {"signing_secret": "nope"}}, "secrets.signing_secret"),
        ({"name": ""}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"config": {"url": "http://127.0.0.1:8080/hook"}}, "config.url"),
        ({"config": {"url": "http://169.254.169.254/latest/meta-data"}}, "config.url"),
        ({"config": {"url": "http://[::ffff:10.0.0.1]/"}}, "config.url"),
        ({"config": {"url": "http://localhost/"}}, "config.url"),
        ({"config": {"url": "https://metadata.google.internal/"}}, "config.url"),
    ],
)
def test_bad_bodies_get_a_422_naming_the_field(
    tenant: TenantKey, change: dict, field: str
) -> None:
    body = copy.deepcopy(WEBHOOK) | change

    response = tenant.client.post(BASE, json=body)

    assert response.status_code == 422, response.text
    assert field in [p["field"] for p in response.json()["detail"]], response.text


@pytest.mark.parametrize(
    ("channel_type", "config", "field"),
    [
        (
            "email",
            {
                "host": "10.1.2.3",
                "from_address": "a@example.com",
                "to": ["b@example.com"],
            },
            "config.host",
        ),
        (
            "email",
            {
                "host": "smtp.example.com",
                "from_address": "nope",
                "to": ["b@example.com"],
            },
            "config.from_address",
        ),
        ("snmp", {"host": "192.168.1.10"}, "config.host"),
        ("snmp", {"host": "bad host!!"}, "config.host"),
        ("snmp", {"host": "traps..example.com"}, "config.host"),
        ("snmp", {"host": "traps.example.com", "port": 70000}, "config.port"),
        (
            "snmp",
            {"host": "traps.example.com", "enterprise_oid": "1.3..6"},
            "config.enterprise_oid",
        ),
        ("mqtt", {"host": "127.0.0.1"}, "config.host"),
        ("mqtt", {"host": "-mqtt.example.com"}, "config.host"),
        (
            "mqtt",
            {"host": "mqtt.example.com", "topic_template": "alerts/#"},
            "config.topic_template",
        ),
    ],
)
def test_socket_channel_targets_are_checked(
    tenant: TenantKey, channel_type: str, config: dict, field: str
) -> None:
    body = {"channel_type": channel_type, "name": "x", "config": config, "secrets": {}}

    response = tenant.client.post(BASE, json=body)

    assert response.status_code == 422, response.text
    assert any(p["field"].startswith(field) for p in response.json()["detail"]), (
        response.text
    )


def test_private_targets_are_allowed_when_the_operator_says_so(
    tenant: TenantKey,
) -> None:
    state = tenant.client.app.state.api
    original = state.settings
    state.settings = original.model_copy(update={"allow_private_targets": True})
    try:
        body = copy.deepcopy(WEBHOOK)
        body["config"]["url"] = "http://127.0.0.1:9/hook"
        response = tenant.client.post(BASE, json=body)
    finally:
        state.settings = original

    assert response.status_code == 201, response.text


def test_another_tenants_channels_do_not_exist(
    tenant: TenantKey, other_tenant: TenantKey
) -> None:
    created = _create(tenant, WEBHOOK)
    url = f"{BASE}/{created['id']}"

    assert other_tenant.client.get(url).status_code == 404
    assert other_tenant.client.patch(url, json={"name": "mine"}).status_code == 404
    assert other_tenant.client.delete(url).status_code == 404
    assert other_tenant.client.post(f"{url}/test").status_code == 404
    assert other_tenant.client.get(BASE).json() == {"items": []}
    assert tenant.client.get(url).json()["name"] == WEBHOOK["name"]


def test_enable_disable_and_delete(tenant: TenantKey) -> None:
    created = _create(tenant, WEBHOOK)
    url = f"{BASE}/{created['id']}"

    assert tenant.client.post(f"{url}/disable").json()["enabled"] is False
    assert tenant.client.post(f"{url}/test").status_code == 409
    assert tenant.client.post(f"{url}/enable").json()["enabled"] is True
    assert tenant.client.delete(url).status_code == 204
    assert tenant.client.get(url).status_code == 404


def test_unknown_and_malformed_ids(tenant: TenantKey) -> None:
    missing = tenant.client.get(f"{BASE}/{uuid.uuid4()}")
    malformed = tenant.client.get(f"{BASE}/not-a-uuid")

    assert missing.status_code == 404
    assert missing.json()["detail"][0]["field"] == "channel_id"
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["field"] == "channel_id"


def test_no_secret_reaches_the_logs_or_an_error(
    tenant: TenantKey, caplog: pytest.LogCaptureFixture
) -> None:
    token = "T000/B000/s3cr3t-slack-token"
    body = {
        "channel_type": "slack",
        "name": "s",
        "secrets": {"webhook_url": f"https://hooks.slack.com/services/{token}"},
    }
    caplog.set_level(logging.DEBUG)

    created = tenant.client.post(BASE, json=body).json()
    refused = tenant.client.patch(
        f"{BASE}/{created['id']}",
        json={"secrets": {"webhook_url": f"http://10.0.0.1/{token}"}},
    )
    tenant.client.get(BASE)

    assert refused.status_code == 422
    assert "s3cr3t" not in refused.text
    assert "s3cr3t" not in caplog.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"channel_type": "snmp", "config": {"host": "nms.example.com"}},
            "secrets.community",
        ),
        (
            {
                "channel_type": "snmp",
                "config": {
                    "host": "nms.example.com",
                    "version": "v3",
                    "username": "noc",
                    "auth_protocol": "SHA",
                    "priv_protocol": "AES",
                },
                "secrets": {"auth_key": "auth-key-5c1e9d"},
            },
            "secrets.priv_key",
        ),
        (
            {
                "channel_type": "email",
                "config": {
                    "host": "smtp.example.com",
                    "username": "alerts",
                    "from_address": "alerts@example.com",
                    "to": ["noc@example.com"],
                },
            },
            "secrets.password",
        ),
        (
            {
                "channel_type": "mqtt",
                "config": {"host": "mqtt.example.com"},
                "secrets": {"password": "mqtt-password"},
            },
            "config.username",
        ),
    ],
)
def test_a_secret_the_settings_need_is_required_when_saved(
    tenant: TenantKey, body: dict, field: str
) -> None:
    response = tenant.client.post(BASE, json={"name": "n", **body})

    assert response.status_code == 422, response.text
    assert [p["field"] for p in response.json()["detail"]] == [field]


def test_changing_the_snmp_version_asks_for_its_secrets(tenant: TenantKey) -> None:
    created = _create(tenant, {"channel_type": "snmp", "name": "s", **EXAMPLES["snmp"]})

    response = tenant.client.patch(
        f"{BASE}/{created['id']}",
        json={"config": {"version": "v3", "username": "noc", "auth_protocol": "SHA"}},
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "secrets.auth_key"


BEARER = "Bearer hdr-t0ken-4f9a2c"


def test_secret_headers_are_write_only_and_encrypted(
    tenant: TenantKey, conn: psycopg.Connection, settings
) -> None:
    from switchboard.secrets import SecretBox

    body = copy.deepcopy(WEBHOOK)
    body["config"]["headers"] = {"X-Team": "noc"}
    body["secrets"]["secret_headers"] = {"Authorization": BEARER, "X-Api-Key": "k-77"}

    created = _create(tenant, body)
    url = f"{BASE}/{created['id']}"

    assert created["secrets_set"] == {"signing_secret": True, "secret_headers": True}
    assert created["config"]["headers"] == {"X-Team": "noc"}
    for text in (tenant.client.get(BASE).text, tenant.client.get(url).text):
        assert "hdr-t0ken" not in text and "k-77" not in text
    config, token = conn.execute(
        "SELECT config::text, secrets_encrypted FROM notification_channels"
        " WHERE id = %s",
        (created["id"],),
    ).fetchone()
    assert "hdr-t0ken" not in config and "hdr-t0ken" not in token
    stored = SecretBox.from_settings(settings).decrypt(token)
    assert stored["secret_headers"] == {"Authorization": BEARER, "X-Api-Key": "k-77"}
    payloads = conn.execute(
        "SELECT payload FROM config_outbox WHERE message_key = %s",
        (f"channel:{created['id']}",),
    ).fetchall()
    assert payloads and all(b"hdr-t0ken" not in row[0] for row in payloads)

    cleared = tenant.client.patch(url, json={"secrets": {"secret_headers": None}})
    assert cleared.json()["secrets_set"]["secret_headers"] is False
    emptied = tenant.client.patch(url, json={"secrets": {"secret_headers": {}}})
    assert emptied.json()["secrets_set"]["secret_headers"] is False


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "X-Auth-Token",
        "X-Api-Key",
        "X-APIKEY",
        "X-Webhook-Secret",
        "X-Password",
    ],
)
def test_credential_headers_in_plain_config_are_refused(
    tenant: TenantKey, name: str
) -> None:
    body = copy.deepcopy(WEBHOOK)
    body["config"]["headers"] = {"X-Team": "noc", name: BEARER}

    response = tenant.client.post(BASE, json=body)

    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == "config.headers"
    assert name in problem["problem"] and "secrets.secret_headers" in problem["problem"]
    assert "hdr-t0ken" not in response.text


def test_credentials_kept_in_clear_are_refused_on_update_too(
    tenant: TenantKey,
) -> None:
    created = _create(tenant, WEBHOOK)
    url = f"{BASE}/{created['id']}"

    plain = tenant.client.patch(
        url, json={"config": {"headers": {"Authorization": BEARER}}}
    )
    userinfo = tenant.client.patch(
        url, json={"config": {"url": "https://ops:pw-9z@hooks.example.com/in"}}
    )
    twice = tenant.client.patch(
        url,
        json={
            "config": {"headers": {"X-Env": "prod"}},
            "secrets": {"secret_headers": {"x-env": "prod"}},
        },
    )

    assert plain.status_code == 422
    assert plain.json()["detail"][0]["field"] == "config.headers"
    assert userinfo.status_code == 422, userinfo.text
    assert userinfo.json()["detail"][0]["field"] == "config.url"
    assert "pw-9z" not in userinfo.text
    assert twice.status_code == 422
    assert twice.json()["detail"][0]["field"] == "secrets.secret_headers"


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Bad Name": "x"}, "secrets.secret_headers"),
        ({"webhook-signature": "x"}, "secrets.secret_headers"),
        ({"Authorization": "Bearer a\r\nX-Injected: 1"}, "secrets.secret_headers"),
        ({"X-Api-Key": "ключ X-Injected"}, "secrets.secret_headers"),
    ],
)
def test_secret_headers_are_checked_like_headers_without_quoting_values(
    tenant: TenantKey, headers: dict, field: str
) -> None:
    body = copy.deepcopy(WEBHOOK)
    body["secrets"]["secret_headers"] = headers

    response = tenant.client.post(BASE, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field
    assert "X-Injected" not in response.text


def test_a_plain_header_value_that_is_not_ascii_is_refused(tenant: TenantKey) -> None:
    body = copy.deepcopy(WEBHOOK)
    body["config"]["headers"] = {"X-Name": "café ☃"}

    response = tenant.client.post(BASE, json=body)

    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert problem["field"] == "config.headers"
    assert "must be ASCII" in problem["problem"]


@pytest.mark.parametrize("field", ["name", "enabled"])
def test_a_name_or_state_set_to_null_is_refused(tenant: TenantKey, field: str) -> None:
    created = _create(tenant, copy.deepcopy(WEBHOOK))

    response = tenant.client.patch(f"{BASE}/{created['id']}", json={field: None})

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field
