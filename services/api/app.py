"""The configuration API application: resources, routes, errors and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram

from services.api.deps import ApiState
from services.api.errors import install_error_handlers
from services.api.limits import BodyLimit
from services.api.relay import OutboxRelay
from services.api.routes import channels, health, jobs, rules
from services.api.ui import install_ui
from switchboard.codec import default_codec
from switchboard.db import make_pool
from switchboard.kafka import make_producer
from switchboard.secrets import SecretBox
from switchboard.settings import Settings

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "switchboard_api_requests_total", "API requests.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "switchboard_api_request_duration_seconds", "API request duration.", ["route"]
)

# How long a request waits for a pooled connection. Requests take milliseconds,
# so a longer wait means the database is away (or hopelessly overloaded), and a
# quick 503 serves the client better than holding it for the pool's default.
CONNECTION_WAIT_S = 3.0
# Names the API's sessions in pg_stat_activity.
APPLICATION_NAME = "switchboard-api"

# Far above any valid configuration request (a channel's fields are bounded well
# below this); enforced while the body is read, so a huge upload is cut short.
MAX_BODY_BYTES = 1024 * 1024

DESCRIPTION = """
Customers manage their notification channels and routing rules here and follow
what happened to each notification. Authenticate every `/customer/…` request
with `Authorization: Bearer <api key>`. Objects of other tenants do not exist
for you (404). Every 4xx answer has a body `{"detail": [{"field", "problem"}]}`,
and so has the 503 that answers while the database is unavailable (retry after
`Retry-After` seconds).
"""


def _open_state(settings: Settings) -> ApiState:
    return ApiState(
        settings=settings,
        pool=make_pool(
            settings,
            min_size=1,
            max_size=8,
            wait_s=CONNECTION_WAIT_S,
            application_name=APPLICATION_NAME,
        ),
        producer=make_producer(settings),
        codec=default_codec(),
        box=SecretBox.from_settings(settings),
    )


def create_app(settings: Settings, run_relay: bool = False) -> FastAPI:
    """The API over ``settings``; ``run_relay`` also publishes the outbox in-process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.api = _open_state(settings)
        relay = OutboxRelay(settings) if run_relay else None
        thread = relay.start_thread() if relay else None
        try:
            yield
        finally:
            if relay and thread:
                relay.stop()
                thread.join(timeout=10.0)
            app.state.api.producer.flush(10.0)
            app.state.api.pool.close()

    app = FastAPI(
        title="Switchboard configuration API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Inside the timing middleware, so routes read the body through the limit.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.middleware("http")(_measure)
    for module in (health, channels, rules, jobs):
        app.include_router(module.router)
    install_ui(app, settings)
    return app


async def _measure(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.perf_counter()
    # CatchUnexpected inside answers errors with a 500; one that still gets
    # here is answered 500 by the server.
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        REQUESTS.labels(request.method, name, str(status)).inc()
        LATENCY.labels(name).observe(time.perf_counter() - started)
