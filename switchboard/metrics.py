"""Prometheus metrics: the endpoint helper every service uses.

Each service defines its own counters and histograms at module level with the
``switchboard_`` prefix and calls :func:`start_metrics_server` once at start-up.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` for this process on ``host:port``; port 0 disables it."""
    if port == 0:
        return
    start_http_server(port, addr=host)
    log.info("metrics endpoint started", extra={"host": host, "port": port})
