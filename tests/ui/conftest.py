"""Fixtures for the web page's browser tests.

A real uvicorn server of the API app (with its outbox relay) on a free loopback
port, the webhook deliverer and the recorder as real subprocesses, a
local webhook receiver, and headless Debian Chromium driven by Playwright.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from ui_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    FAIL_PATH,
    Receiver,
    Tenant,
    free_port,
)

from services.api.app import create_app
from services.api.tenants import create_tenant
from switchboard.settings import Settings


@pytest.fixture(scope="session")
def ui_settings(settings: Settings) -> Settings:
    """The shared stack's settings, allowing loopback webhook targets."""
    return settings.model_copy(update={"allow_private_targets": True})


@pytest.fixture(scope="session")
def server(ui_settings: Settings) -> Iterator[str]:
    """The base URL of a real uvicorn server of the API app, relay running."""
    port = free_port()
    config = uvicorn.Config(
        create_app(ui_settings, run_relay=True),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    while not instance.started and thread.is_alive():
        time.sleep(0.05)
    assert instance.started, "the API server did not start"
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=15)


# Logs of the pipeline subprocesses, shown with any failing test's report.
PIPELINE_LOGS: list[Path] = []
LOG_TAIL_LINES = 40


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """Attach the end of the deliverer's and recorder's logs to a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for path in PIPELINE_LOGS:
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            report.sections.append((f"{path.name} (last lines)", "\n".join(tail)))


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A webhook deliverer and a recorder as subprocesses, for the whole session."""
    env = os.environ | {"SWITCHBOARD_ALLOW_PRIVATE_TARGETS": "true"}
    logs = tmp_path_factory.mktemp("pipeline")
    PIPELINE_LOGS.extend(logs / f"{name}.log" for name in ("deliverer", "recorder"))
    command = [str(Path(sys.executable).parent / "switchboard")]
    processes = []
    for name, args in (("deliverer", ["--type", "webhook"]), ("recorder", [])):
        out = (logs / f"{name}.log").open("w")
        processes.append(
            subprocess.Popen(command + [name, *args], env=env, stdout=out, stderr=out)
        )
    yield
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """An HTTP receiver answering 204, or 400 under /fail."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            received.append(
                {"path": self.path, "headers": dict(self.headers), "body": body}
            )
            self.send_response(400 if self.path.startswith(FAIL_PATH) else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Receiver(f"http://127.0.0.1:{httpd.server_address[1]}", received)
    httpd.shutdown()


# Module scope: the sync driver keeps an event loop running on this thread
# until it stops, which breaks any asyncio test that runs after it (tests/ui
# is no package, so "package" scope would last the whole session).
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync driver, stopped after each module's browser tests."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield instance
    instance.close()


@pytest.fixture
def make_tenant(conn: psycopg.Connection, unique: str) -> Callable[[str], Tenant]:
    """Create tenants with unique names."""

    def create(label: str = "ui") -> Tenant:
        name = f"{label}-{unique}-{uuid.uuid4().hex[:6]}"
        tenant_id, key = create_tenant(conn, name)
        return Tenant(tenant_id, key, name)

    return create


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh browser context and page; records every URL it requests."""
    context = browser.new_context(viewport=DESKTOP, base_url=server)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.requested = []  # type: ignore[attr-defined]
    page.on("request", lambda request: page.requested.append(request.url))  # type: ignore[attr-defined]
    yield page
    context.close()
