"""Fixtures of the operator tools' tests: a database connection with dict rows."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row


@pytest.fixture
def dict_conn(settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection whose rows are dicts."""
    with psycopg.connect(
        settings.database_url, autocommit=True, row_factory=dict_row
    ) as connection:
        yield connection


@pytest.fixture
def group(admin, unique) -> Iterator[str]:
    """A consumer group id of this test, deleted afterwards."""
    group = f"test.ops.{unique}"
    yield group
    futures = admin.delete_consumer_groups([group], request_timeout=30)
    try:
        futures[group].result(30)
    except Exception:
        pass  # never created, or already deleted by the test
