"""A real local HTTP receiver for webhook deliveries, verifying their signatures.

It listens on a loopback port (uvicorn in a background thread), checks every
request's Standard Webhooks signature with the ``standardwebhooks`` library,
records what arrived and when, and answers as planned per path: a status,
headers, a body, or a delay that makes the endpoint hang. Tests drive it from
Python; ``python -m services.receivers.webhook`` runs it for a demo and prints
each request as a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError

STARTUP_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 1_048_576


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    signature_valid: bool | None
    signature_error: str | None = None

    @property
    def webhook_id(self) -> str | None:
        """The Standard Webhooks message id (Switchboard's job id)."""
        return self.headers.get("webhook-id")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class _Plan:
    replies: deque[Reply] = field(default_factory=deque)
    then: Reply = field(default_factory=Reply)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records and verifies webhook requests."""

    def __init__(
        self,
        signing_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[Received], None] | None = None,
    ) -> None:
        """Verify with ``signing_secret`` (if given); port 0 picks a free port."""
        self._verifier = Webhook(signing_secret) if signing_secret else None
        self._host = host
        self._port = port
        self._on_request = on_request
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._plans: dict[str, _Plan] = defaultdict(_Plan)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self._host}:{self._port}"

    def url(self, path: str = "/hook") -> str:
        """The full URL of ``path`` on this receiver."""
        return f"{self.base_url}{path}"

    def plan(self, path: str, replies: list[Reply], then: Reply | None = None) -> None:
        """Answer the next requests to ``path`` with ``replies``, then ``then``."""
        with self._lock:
            self._plans[path] = _Plan(deque(replies), then or Reply())

    def received(self, path: str | None = None) -> list[Received]:
        """Every request so far (to ``path``, if given), in arrival order."""
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def wait_for(
        self, count: int, path: str | None = None, timeout_s: float = 30.0
    ) -> list[Received]:
        """Wait until ``count`` requests (to ``path``) arrived; return them all."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.received(path)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} requests arrived")
            time.sleep(0.02)

    def start(self) -> WebhookReceiver:
        """Start serving in a background thread; returns once it listens."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        self._port = listener.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            # The process's own logging configuration, not uvicorn's handlers
            # and format, which would bypass it (and JSON logs).
            log_config=None,
            lifespan="off",
            interface="asgi3",
            access_log=False,
            timeout_graceful_shutdown=1,
            backlog=1024,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [listener]},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving; requests still hanging are cut off."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10.0)

    def __enter__(self) -> WebhookReceiver:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        """Stop on leaving the block."""
        self.stop()

    async def _app(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope["headers"]
        }
        received = self._record(scope["path"], scope["method"], headers, body)
        if self._on_request is not None:
            self._on_request(received)
        reply = self._next_reply(scope["path"])
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        response_headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        response_headers.append((b"content-length", str(len(reply.body)).encode()))
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": response_headers,
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

    def _record(
        self, path: str, method: str, headers: dict[str, str], body: bytes
    ) -> Received:
        valid, error = self._verify(headers, body)
        received = Received(path, method, headers, body, time.time(), valid, error)
        with self._lock:
            self._received.append(received)
        return received

    def _verify(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[bool | None, str | None]:
        if self._verifier is None:
            return None, None
        try:
            self._verifier.verify(body, headers, json_parse=False)
        except WebhookVerificationError as error:
            return False, str(error)
        return True, None

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            plan = self._plans.get(path)
            if plan is None:
                return Reply()
            return plan.replies.popleft() if plan.replies else plan.then


async def _read_body(receive: Callable) -> bytes | None:
    """The request body, or None if the client went away before sending it all."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def main() -> None:
    """Run a receiver in the foreground, printing each request as a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--secret", help="whsec_… secret to verify signatures with")
    parser.add_argument(
        "--quiet", action="store_true", help="print nothing per request"
    )
    args = parser.parse_args()

    def show(received: Received) -> None:
        print(
            json.dumps(
                {
                    "path": received.path,
                    "webhook_id": received.webhook_id,
                    "signature_valid": received.signature_valid,
                    "body": received.body.decode("utf-8", errors="replace"),
                }
            ),
            flush=True,
        )

    receiver = WebhookReceiver(
        args.secret, port=args.port, on_request=None if args.quiet else show
    )
    receiver.start()
    print(f"listening on {receiver.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
