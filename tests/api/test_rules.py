"""Routing rule CRUD: validation of every field, ordering and tenant isolation."""

from __future__ import annotations

import uuid

import pytest
from api_support import RULES, TenantKey


def _rule(channel_id: str, **fields: object) -> dict:
    return {"channel_id": channel_id, "name": "core to NOC", **fields}


def test_create_read_update_delete(tenant: TenantKey) -> None:
    channel = tenant.create_channel()
    body = _rule(
        channel["id"],
        priority=5,
        site_ids=["ams-1"],
        device_prefixes=["core-"],
        alert_types=["link_down"],
        min_severity="HIGH",
        deliver_on=["OPEN", "CLOSED"],
        throttle_minutes=10,
        stop_on_match=True,
    )

    created = tenant.client.post(RULES, json=body)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert {k: rule[k] for k in body} == body

    url = f"{RULES}/{rule['id']}"
    changed = tenant.client.patch(url, json={"min_severity": None, "priority": 1})
    assert changed.status_code == 200, changed.text
    assert changed.json()["min_severity"] is None
    assert changed.json()["priority"] == 1
    assert changed.json()["site_ids"] == ["ams-1"]

    assert tenant.client.delete(url).status_code == 204
    assert tenant.client.get(url).status_code == 404


def test_an_event_kind_named_twice_is_kept_once(tenant: TenantKey) -> None:
    channel = tenant.create_channel()
    body = _rule(channel["id"], deliver_on=["OPEN", "CLOSED", "OPEN"])

    created = tenant.client.post(RULES, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["deliver_on"] == ["OPEN", "CLOSED"]

    url = f"{RULES}/{created.json()['id']}"
    changed = tenant.client.patch(url, json={"deliver_on": ["CLOSED", "CLOSED"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["deliver_on"] == ["CLOSED"]


def test_list_is_in_priority_order(tenant: TenantKey) -> None:
    channel = tenant.create_channel()
    for priority in (30, 10, 20):
        response = tenant.client.post(
            RULES, json=_rule(channel["id"], name=f"p{priority}", priority=priority)
        )
        assert response.status_code == 201

    names = [r["name"] for r in tenant.client.get(RULES).json()["items"]]

    assert names == ["p10", "p20", "p30"]


def test_rules_sharing_a_priority_are_listed_as_the_router_tries_them(
    tenant: TenantKey,
) -> None:
    channel = tenant.create_channel()
    for index in range(6):
        response = tenant.client.post(
            RULES, json=_rule(channel["id"], name=f"tie{index}", priority=7)
        )
        assert response.status_code == 201

    ids = [r["id"] for r in tenant.client.get(RULES).json()["items"]]

    # services.router.matcher sorts by (priority, id) with the id as text.
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"min_severity": "URGENT"}, "min_severity"),
        ({"deliver_on": ["OPENED"]}, "deliver_on.0"),
        ({"site_ids": [""]}, "site_ids.0"),
        ({"device_prefixes": ["  "]}, "device_prefixes.0"),
        ({"alert_types": ["a\x00"]}, "alert_types.0"),
        ({"throttle_minutes": -1}, "throttle_minutes"),
        ({"priority": 2**63}, "priority"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
        ({"channel_id": "nope"}, "channel_id"),
        ({"channel_id": str(uuid.uuid4())}, "channel_id"),
    ],
)
def test_invalid_fields_are_named(tenant: TenantKey, fields: dict, field: str) -> None:
    channel = tenant.create_channel()

    response = tenant.client.post(RULES, json=_rule(channel["id"]) | fields)

    assert response.status_code == 422, response.text
    assert field in [p["field"] for p in response.json()["detail"]], response.text


def test_invalid_update_is_named(tenant: TenantKey) -> None:
    channel = tenant.create_channel()
    rule = tenant.client.post(RULES, json=_rule(channel["id"])).json()

    response = tenant.client.patch(f"{RULES}/{rule['id']}", json={"name": None})

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "name"


def test_a_rule_cannot_point_at_another_tenants_channel(
    tenant: TenantKey, other_tenant: TenantKey
) -> None:
    theirs = other_tenant.create_channel()
    mine = tenant.create_channel()
    rule = tenant.client.post(RULES, json=_rule(mine["id"])).json()

    created = tenant.client.post(RULES, json=_rule(theirs["id"]))
    moved = tenant.client.patch(
        f"{RULES}/{rule['id']}", json={"channel_id": theirs["id"]}
    )

    assert created.status_code == 422
    assert moved.status_code == 422
    assert moved.json()["detail"][0]["field"] == "channel_id"


def test_another_tenants_rules_do_not_exist(
    tenant: TenantKey, other_tenant: TenantKey
) -> None:
    channel = tenant.create_channel()
    rule = tenant.client.post(RULES, json=_rule(channel["id"])).json()
    url = f"{RULES}/{rule['id']}"

    assert other_tenant.client.get(url).status_code == 404
    assert other_tenant.client.patch(url, json={"priority": 1}).status_code == 404
    assert other_tenant.client.delete(url).status_code == 404
    assert other_tenant.client.get(RULES).json() == {"items": []}
    assert tenant.client.get(url).json()["priority"] == 100
