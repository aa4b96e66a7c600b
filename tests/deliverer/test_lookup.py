"""The delivered-job lookup while its database is unreachable."""

from __future__ import annotations

import logging
import socket
import uuid

from services.deliverer.lookup import DeliveredLookup


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_an_unreachable_database_is_reported_once_and_not_retried_per_batch(
    caplog,
) -> None:
    lookup = DeliveredLookup(
        f"postgresql://switchboard:secret-pw@127.0.0.1:{_closed_port()}/switchboard"
    )
    job_ids = [str(uuid.uuid4())]

    with caplog.at_level(logging.INFO, logger="services.deliverer.lookup"):
        results = [await lookup.delivered(job_ids) for _ in range(5)]

    assert results == [set()] * 5
    assert lookup.resting
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "secret-pw" not in caplog.text
