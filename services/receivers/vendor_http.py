"""The common part of the vendor receivers: a threaded loopback HTTP server.

A :class:`VendorReceiver` subclass implements :meth:`VendorReceiver.handle`,
which checks one request the way the vendor does and returns a
:class:`Reply`. The base class records every request, and plays programmed
failures before the vendor logic runs::

    with SlackReceiver() as slack:
        slack.fail_next(429, headers={"Retry-After": "30"})
        slack.delay_next(2.0)          # answer late (client timeouts)
        slack.disconnect_next()        # close without answering
        slack.garbage_next()           # answer with bytes that are not HTTP
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One request as the receiver saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError)."""
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class Reply:
    """What the receiver answers."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, status: int, document: Any, headers: dict[str, str] | None = None
    ) -> Reply:
        """A JSON reply."""
        body = json.dumps(document).encode()
        return cls(status, body, "application/json; charset=utf-8", headers or {})

    @classmethod
    def text(
        cls, status: int, text: str, headers: dict[str, str] | None = None
    ) -> Reply:
        """A plain-text reply."""
        return cls(status, text.encode(), "text/plain; charset=utf-8", headers or {})


@dataclass(frozen=True)
class _Failure:
    kind: str
    status: int = 0
    body: str | None = None
    headers: dict[str, str] | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class Exchange:
    """A request and the status it was answered with (None: no answer)."""

    request: Request
    status: int | None


class VendorReceiver:
    """Base of the vendor receivers; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failures: deque[_Failure] = deque()
        self.exchanges: list[Exchange] = []
        self.accepted: list[Any] = []
        self.echo = False

    # -- what a subclass provides -------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Check ``request`` as the vendor would and answer like it."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where to send requests (printed when run from the command line)."""
        return self.base_url

    def error_reply(self, status: int) -> Reply:
        """The vendor's usual answer for ``status`` (used by :meth:`fail_next`)."""
        return Reply.text(status, f"error {status}")

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> VendorReceiver:
        """Listen and serve in a background thread."""
        self._server = _Server(self._address, _handler_for(self))
        # A short poll interval so stop() returns at once.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> VendorReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "receiver not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- programmed failures ------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (vendor's body)."""
        self._program(_Failure("status", status, body, headers), times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Handle the next ``times`` requests normally, but only after ``seconds``."""
        self._program(_Failure("delay", delay_s=seconds), times)

    def disconnect_next(self, times: int = 1) -> None:
        """Close the next ``times`` connections without answering."""
        self._program(_Failure("disconnect"), times)

    def garbage_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests with bytes that are not HTTP."""
        self._program(_Failure("garbage"), times)

    def _program(self, failure: _Failure, times: int) -> None:
        with self._lock:
            self._failures.extend([failure] * times)

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _record(self, request: Request, status: int | None) -> None:
        with self._lock:
            self.exchanges.append(Exchange(request, status))
        if self.echo:
            # Status and body only: the path and query carry the secret.
            line = {"status": status, "body": request.body.decode(errors="replace")}
            print(json.dumps(line, ensure_ascii=False), flush=True)

    def _accept(self, document: Any) -> None:
        with self._lock:
            self.accepted.append(document)

    # -- serving ------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        request = _read_request(handler)
        failure = self._next_failure()
        if failure is not None and failure.kind == "delay":
            time.sleep(failure.delay_s)
            failure = None
        if failure is None:
            reply = self._handled(request)
        elif failure.kind == "status":
            reply = self._programmed_reply(failure)
        else:
            self._record(request, None)
            _misbehave(handler, failure.kind)
            return
        self._record(request, reply.status)
        _write_reply(handler, reply)

    def _handled(self, request: Request) -> Reply:
        try:
            return self.handle(request)
        except Exception:
            # A fault of the receiver itself must show as one, not as a
            # dropped connection that a test would read as a network error.
            log.exception("receiver failed to handle a request")
            return Reply.text(500, "receiver fault; see the test log")

    def _programmed_reply(self, failure: _Failure) -> Reply:
        reply = self.error_reply(failure.status)
        if failure.body is not None:
            reply = Reply(failure.status, failure.body.encode(), reply.content_type)
        return Reply(
            reply.status,
            reply.body,
            reply.content_type,
            {**reply.headers, **(failure.headers or {})},
        )


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 resets connections when a sender opens many at once.
    request_queue_size = 128
    daemon_threads = True
    block_on_close = False


def _handler_for(receiver: VendorReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            receiver._serve(self)

        do_GET = do_PUT = do_PATCH = do_DELETE = do_POST  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            # Request lines carry webhook tokens; the default handler prints them.
            pass

    return Handler


def _read_request(handler: BaseHTTPRequestHandler) -> Request:
    length = int(handler.headers.get("content-length") or 0)
    body = handler.rfile.read(length) if length else b""
    parts = urlsplit(handler.path)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    headers = {name.lower(): value for name, value in handler.headers.items()}
    return Request(handler.command, parts.path, query, headers, body)


def _write_reply(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    try:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(reply.body)
    except (BrokenPipeError, ConnectionResetError):
        # The client gave up (its timeout); nothing left to answer.
        pass


def _misbehave(handler: BaseHTTPRequestHandler, kind: str) -> None:
    if kind == "garbage":
        handler.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
        handler.wfile.flush()
    handler.close_connection = True


def serve_from_command_line(
    receiver_class: type[VendorReceiver], **kwargs: Any
) -> None:
    """Run a receiver in the foreground (``python -m services.receivers.<name>``).

    Prints where to send requests, then one JSON line per request received.
    """
    parser = argparse.ArgumentParser(description=receiver_class.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--secret", default=None, help="Fixed token, signature or routing key."
    )
    arguments = parser.parse_args()
    receiver = receiver_class(port=arguments.port, secret=arguments.secret, **kwargs)
    receiver.echo = True
    receiver.start()
    print(f"{receiver_class.__name__} listening: {receiver.describe()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        receiver.stop()
