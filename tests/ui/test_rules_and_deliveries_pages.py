"""Routing rules, deliveries, a dead job retried, keyboard use and page hygiene."""

from __future__ import annotations

import re

import psycopg
from playwright.sync_api import Page, expect
from ui_support import (
    FAIL_PATH,
    Receiver,
    Tenant,
    api,
    insert_dead_job,
    shoot,
    sign_in,
)

CHANNELS = "/customer/notification-channels"
RULES = "/customer/notification-routing-rules"


def _channel(server: str, tenant: Tenant, name: str, url: str) -> dict:
    body = {"channel_type": "webhook", "name": name, "config": {"url": url}}
    return api(server, tenant.key, "POST", CHANNELS, body)


def _rule_names(page: Page) -> list[str]:
    return page.locator("#rules [data-label='Name']").all_inner_texts()


def test_create_a_rule_and_see_what_it_matches(
    page: Page, make_tenant, server: str
) -> None:
    tenant = make_tenant()
    _channel(server, tenant, "NOC hook", "https://noc.example.com/hook")
    sign_in(page, tenant.key)
    page.get_by_role("link", name="Routing rules").click()
    page.get_by_role("link", name="Add a rule").click()

    page.get_by_label("Name").fill("Core routers")
    page.get_by_label("Channel").select_option(label="NOC hook")
    page.get_by_label("Priority").fill("-5000000")
    page.get_by_label("Device prefixes").fill("core-\nedge-")
    page.get_by_label("Minimum severity").select_option("HIGH")
    page.get_by_label("OPEN").check()
    page.get_by_label("CLOSED").check()
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator("#f-priority-error")).to_contain_text("greater than")
    shoot(page, "rule-form-error")

    page.get_by_label("Priority").fill("10")
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator(".notice")).to_have_text("Rule “Core routers” created.")
    row = page.locator("#rules tbody tr").first
    expect(row).to_contain_text("Severity HIGH or worse")
    expect(row).to_contain_text("Devices starting with: core-, edge-")
    expect(row).to_contain_text("Event kinds: OPEN, CLOSED")
    expect(row.locator("[data-label='Feeds channel']")).to_have_text("NOC hook")

    row.get_by_role("link", name="Core routers", exact=True).click()
    expect(page.get_by_label("Device prefixes")).to_have_value("core-\nedge-")
    page.get_by_label("Minimum severity").select_option("")
    page.get_by_label("Stop on match").check()
    shoot(page, "rule-edit")
    page.get_by_role("button", name="Save changes").click()
    row = page.locator("#rules tbody tr").first
    expect(row).not_to_contain_text("Severity")
    expect(row).to_contain_text("Stop after a match")


def test_reorder_disable_and_delete_rules(page: Page, make_tenant, server: str) -> None:
    tenant = make_tenant()
    channel = _channel(server, tenant, "Hook", "https://hook.example.com/")
    created = [
        api(
            server,
            tenant.key,
            "POST",
            RULES,
            {"channel_id": channel["id"], "name": name, "priority": 100},
        )
        for name in ("first", "second", "third")
    ]
    # Tied priorities: the router tries them by rule id, and so does the page.
    a, b, c = [r["name"] for r in sorted(created, key=lambda r: r["id"])]
    sign_in(page, tenant.key)
    page.goto("/ui/rules")
    assert _rule_names(page) == [a, b, c]

    page.get_by_role("button", name=f"Move up {c}").click()
    expect(page.locator(".notice")).to_contain_text("moved")
    assert _rule_names(page) == [a, c, b]
    page.get_by_role("button", name=f"Move down {a}").click()
    expect(page.locator(".notice")).to_contain_text("moved")
    assert _rule_names(page) == [c, a, b]
    stored = api(server, tenant.key, "GET", RULES)["items"]
    assert [r["name"] for r in stored] == [c, a, b]

    page.get_by_role("button", name=f"Disable {b}").click()
    row = page.locator("tr", has_text=b)
    expect(row.locator(".badge.off")).to_have_text("disabled")
    shoot(page, "rules")

    row.get_by_role("link", name="Delete").click()
    shoot(page, "rule-delete")
    page.get_by_role("button", name="Delete rule").click()
    expect(page.locator(".notice")).to_have_text("Rule deleted.")
    assert _rule_names(page) == [c, a]


def _sent_test_dies(page: Page, channel: dict) -> str:
    """Send a test to a refusing target through the real pipeline; its job id."""
    page.goto(f"/ui/channels/{channel['id']}")
    page.get_by_role("button", name="Send test").click()
    result = page.locator("#test-result")
    expect(result).to_have_attribute("data-state", "dead", timeout=60_000)
    href = result.get_by_role("link", name="Details").get_attribute("href")
    return str(href).rsplit("/", 1)[1]


def _open_job(page: Page, job_id: str) -> None:
    page.locator(f"tr[data-job-id='{job_id}']").get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/ui/deliveries/{job_id}$"))


def test_see_a_dead_job_and_retry_it(
    page: Page,
    make_tenant,
    server: str,
    receiver: Receiver,
    pipeline: None,
    conn: psycopg.Connection,
) -> None:
    tenant = make_tenant()
    _channel(server, tenant, "Healthy", "https://healthy.example.com/")
    channel = _channel(server, tenant, "Refusing", f"{receiver.url}{FAIL_PATH}")
    sign_in(page, tenant.key)
    died = _sent_test_dies(page, channel)
    # A dead job as the recorder writes it, alert included, so it can be retried.
    stored = insert_dead_job(conn, tenant, channel["id"])

    page.get_by_role("navigation").get_by_role("link", name="Deliveries").click()
    page.get_by_label("Status").select_option("dead")
    page.get_by_label("Channel").select_option(label="Refusing")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=dead"))
    rows = page.locator("#jobs tbody tr")
    expect(rows).to_have_count(2)
    for row in rows.all():
        expect(row.locator(".badge")).to_have_text("dead")
        expect(row).to_contain_text("Refusing")
    shoot(page, "deliveries")

    _open_job(page, died)
    last = page.locator("#attempts tbody tr").last
    expect(last.locator("[data-label='Outcome']")).to_have_text("dead")
    expect(last.locator("[data-label='Status code']")).to_have_text("400")
    page.go_back()

    _open_job(page, stored)
    attempts = page.locator("#attempts tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first.locator("[data-label='Status code']")).to_have_text("400")
    expect(attempts.first.locator("[data-label='Outcome']")).to_have_text("dead")
    shoot(page, "job-dead")

    page.get_by_role("button", name="Retry delivery").click()
    expect(page.locator(".notice")).to_have_text("Retry queued as attempt 2.")
    # The target refuses the second attempt too; the page refreshes itself and
    # lists it under the first.
    expect(attempts).to_have_count(2, timeout=60_000)
    expect(page.locator("#job-state .badge")).to_have_text("dead")
    shoot(page, "job-retried")


def test_keyboard_labels_assets_and_wording(
    page: Page, make_tenant, server: str
) -> None:
    tenant = make_tenant()
    channel = _channel(server, tenant, "Kb hook", "https://kb.example.com/")
    api(server, tenant.key, "POST", RULES, {"channel_id": channel["id"], "name": "r"})
    page.goto("/ui/sign-in")
    shoot(page, "sign-in")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(tenant.key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/channels$"))
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Add a channel")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/channels/new$"))

    paths = ["/ui/channels", "/ui/channels/new"]
    paths += [
        f"/ui/channels/new/{kind}"
        for kind in ("slack", "pagerduty", "teams", "webhook", "snmp", "email", "mqtt")
    ]
    paths += [
        f"/ui/channels/{channel['id']}",
        "/ui/rules",
        "/ui/rules/new",
        "/ui/deliveries",
    ]
    for path in paths:
        page.goto(path)
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
               .filter(e => e.type !== 'hidden' && e.labels.length === 0)
               .map(e => e.name)"""
        )
        assert unlabelled == [], (path, unlabelled)
        assert "integration" not in page.content().lower(), path
    for kind in ("email", "snmp", "mqtt", "pagerduty"):
        page.goto(f"/ui/channels/new/{kind}")
        shoot(page, f"channel-new-{kind}")
    page.goto("/ui/channels/new")
    shoot(page, "channel-types")

    foreign = [url for url in page.requested if not url.startswith(server)]  # type: ignore[attr-defined]
    assert foreign == [], foreign


def test_forms_without_the_csrf_token_are_refused(
    page: Page, make_tenant, server: str
) -> None:
    tenant = make_tenant()
    channel = _channel(server, tenant, "Csrf hook", "https://csrf.example.com/")
    sign_in(page, tenant.key)
    response = page.request.post(
        f"/ui/channels/{channel['id']}/delete", form={"csrf": "forged"}
    )
    assert response.status == 403
    assert api(server, tenant.key, "GET", f"{CHANNELS}/{channel['id']}")["name"] == (
        "Csrf hook"
    )

    # No cookie at all (plain HTTP drops a Secure one): the page says so.
    page.context.clear_cookies()
    response = page.request.post(
        "/ui/sign-in", form={"csrf": "forged", "api_key": tenant.key}
    )
    assert response.status == 403
    assert "over HTTPS" in response.text()


def test_deliveries_are_paged_newest_first(
    page: Page, make_tenant, server: str, conn: psycopg.Connection
) -> None:
    tenant = make_tenant()
    channel = _channel(server, tenant, "Busy", "https://busy.example.com/")
    jobs = [insert_dead_job(conn, tenant, channel["id"]) for _ in range(51)]
    sign_in(page, tenant.key)
    page.goto("/ui/deliveries")
    expect(page.locator("#jobs tbody tr")).to_have_count(50)
    page.get_by_role("link", name="Older deliveries").click()
    rows = page.locator("#jobs tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", jobs[0])
