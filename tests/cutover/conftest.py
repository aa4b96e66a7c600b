"""Fixtures for cutover tests: a scratch database with the old tables filled in."""

from __future__ import annotations

import pytest
from cutover_fixture import Legacy, create_legacy

from switchboard import db
from switchboard.settings import Settings


@pytest.fixture
def legacy(scratch_database: str) -> Legacy:
    """A migrated scratch database holding the old tables and the awkward rows."""
    db.migrate(scratch_database)
    return create_legacy(scratch_database)


@pytest.fixture
def cutover_settings(settings: Settings, legacy: Legacy) -> Settings:
    """Settings whose database is the scratch one (targets must be public)."""
    return settings.model_copy(
        update={"database_url": legacy.url, "allow_private_targets": False}
    )
