"""Signing in, channels, a test notification through the pipeline, isolation."""

from __future__ import annotations

import re

import psycopg
from playwright.sync_api import Page, expect
from ui_support import (
    Receiver,
    Tenant,
    api,
    shoot,
    sign_in,
)

from services.api.tenants import revoke_key

CHANNELS = "/customer/notification-channels"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _new_webhook(page: Page, name: str, url: str) -> None:
    page.goto("/ui/channels/new")
    page.get_by_role("link", name="Webhook").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("URL").fill(url)


def test_sign_in_session_cookie_revoked_key_and_sign_out(
    page: Page, make_tenant, server: str, conn: psycopg.Connection
) -> None:
    page.goto("/ui/channels")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next=/ui/channels$"))
    page.get_by_label("API key").fill("sbk_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#f-api-key-error")).to_have_text("This API key is not valid.")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    shoot(page, "sign-in-error")

    tenant = make_tenant()
    sign_in(page, tenant.key)
    cookie = next(c for c in page.context.cookies() if c["name"] == "sb_session")
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (
        True,
        True,
        "Strict",
    )
    assert tenant.key not in cookie["value"]

    revoke_key(conn, tenant.key)
    page.goto("/ui/rules")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next=/ui/rules$"))
    assert not [
        c
        for c in page.context.cookies()
        if c["name"] == "sb_session" and c["value"] == cookie["value"]
    ]

    sign_in(page, make_tenant().key)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".notice")).to_have_text("Signed out.")
    page.goto("/ui/channels")
    expect(page).to_have_url(re.compile(r"/ui/sign-in"))


def test_bad_url_is_shown_beside_the_field_then_the_channel_is_created(
    page: Page, make_tenant, receiver: Receiver
) -> None:
    tenant = make_tenant()
    sign_in(page, tenant.key)
    _new_webhook(page, "Broken hook", "not a url")
    page.get_by_role("button", name="Create channel").click()

    error = page.locator("#f-config-url-error")
    expect(error).to_contain_text("valid URL")
    expect(page.get_by_label("URL")).to_have_attribute(
        "aria-describedby", re.compile("f-config-url-error")
    )
    expect(page.get_by_label("URL")).to_be_focused()
    shoot(page, "channel-form-error")

    page.get_by_label("URL").fill(f"{receiver.url}/hook")
    page.get_by_label("Signing secret").fill(SIGNING_SECRET)
    page.get_by_role("button", name="Create channel").click()
    expect(page.locator(".notice")).to_have_text("Channel “Broken hook” created.")
    status = page.locator("#f-secrets-signing-secret-status")
    expect(status).to_contain_text("set")
    expect(status).not_to_contain_text("not set")
    assert SIGNING_SECRET not in page.content()
    shoot(page, "channel-edit")

    page.get_by_label("Signing secret").fill("whsec_short")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#f-secrets-signing-secret-error")).to_contain_text("base64")
    expect(page.get_by_label("Signing secret")).to_have_value("")
    page.get_by_label("Remove this secret").check()
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".notice")).to_have_text("Changes saved.")
    expect(status).to_contain_text("not set")


def test_edit_disable_enable_and_delete_a_channel(page: Page, make_tenant) -> None:
    tenant = make_tenant()
    sign_in(page, tenant.key)
    _new_webhook(page, "Ops hook", "https://ops.example.com/hook")
    page.get_by_label("Headers").fill("X-Team: noc")
    page.get_by_role("button", name="Create channel").click()
    expect(page.locator("#f-secrets-signing-secret-status")).to_contain_text("not set")

    page.get_by_label("Name").fill("Ops hook renamed")
    page.get_by_label("Timeout (seconds)").fill("fast")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#f-config-timeout-s-error")).to_contain_text("number")
    page.get_by_label("Timeout (seconds)").fill("5")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".notice")).to_have_text("Changes saved.")
    expect(page.get_by_label("Headers")).to_have_value("X-Team: noc")

    page.goto("/ui/channels")
    row = page.locator("tr", has_text="Ops hook renamed")
    row.get_by_role("button", name="Disable").click()
    expect(row.locator(".badge.off")).to_have_text("disabled")
    row.get_by_role("button", name="Enable").click()
    expect(row.locator(".badge.on")).to_have_text("enabled")
    shoot(page, "channels")

    row.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delete")
    shoot(page, "channel-delete")
    page.get_by_role("button", name="Delete channel").click()
    expect(page.locator(".notice")).to_have_text("Channel deleted.")
    expect(page.locator("#channels")).to_have_count(0)


def test_send_test_shows_the_outcome_when_it_arrives(
    page: Page, make_tenant, receiver: Receiver, pipeline: None
) -> None:
    tenant = make_tenant()
    sign_in(page, tenant.key)
    _new_webhook(page, "Test target", f"{receiver.url}/test-{tenant.id}")
    page.get_by_role("button", name="Create channel").click()
    expect(page.locator(".notice")).to_contain_text("created")

    page.get_by_role("button", name="Send test").click()
    result = page.locator("#test-result")
    expect(result).to_be_visible()
    expect(result).to_have_attribute("data-state", "delivered", timeout=60_000)
    expect(result.locator(".test-state")).to_have_text("delivered")
    shoot(page, "channel-test")
    paths = [r["path"] for r in receiver.requests]
    assert f"/test-{tenant.id}" in paths

    page.goto("/ui/channels")
    row = page.locator("tr", has_text="Test target")
    expect(row.locator("[data-label='Last delivery'] .badge")).to_have_text("delivered")


def test_another_tenants_channels_never_appear(
    page: Page, make_tenant, server: str, conn: psycopg.Connection
) -> None:
    other: Tenant = make_tenant("other")
    theirs = api(
        server,
        other.key,
        "POST",
        CHANNELS,
        {
            "channel_type": "webhook",
            "name": f"Private of {other.name}",
            "config": {"url": "https://other.example.com/hook"},
        },
    )
    mine = make_tenant("mine")
    api(
        server,
        mine.key,
        "POST",
        CHANNELS,
        {
            "channel_type": "webhook",
            "name": "Mine",
            "config": {"url": "https://mine.example.com/hook"},
        },
    )
    sign_in(page, mine.key)
    expect(page.locator("#channels")).to_contain_text("Mine")
    expect(page.locator("body")).not_to_contain_text(other.name)

    for path in (
        f"/ui/channels/{theirs['id']}",
        f"/ui/channels/{theirs['id']}/delete",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 404
        expect(page.locator("body")).not_to_contain_text(other.name)
    shoot(page, "not-found")

    page.goto(f"/ui/deliveries?channel_id={theirs['id']}")
    options = page.locator("#f-channel option").all_inner_texts()
    assert options == ["Any", "Mine"]
    page.goto("/ui/rules/new")
    assert page.locator("#f-channel-id option").all_inner_texts()[-1] == "Mine"
    expect(page.locator("body")).not_to_contain_text(other.name)
