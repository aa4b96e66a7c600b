"""Settings from the environment, secrets never printed, and log formats."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from switchboard.console import NON_TERMINAL_WIDTH, make_console
from switchboard.logs import JsonFormatter, TextFormatter
from switchboard.secrets import SecretBox, SecretsError
from switchboard.settings import (
    Settings,
    database_address,
    masked_url,
    parse_duration_ms,
)


def test_settings_come_from_prefixed_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    monkeypatch.setenv("SWITCHBOARD_RETRY_DELAYS", "1s,5s")
    monkeypatch.setenv("SWITCHBOARD_MAX_ATTEMPTS", "3")

    settings = Settings()

    assert settings.kafka_bootstrap == "127.0.0.1:29092"
    assert settings.retry_tiers == [("1s", 1000), ("5s", 5000)]
    assert settings.max_attempts == 3


def test_secret_key_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SecretBox.generate_key()
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", key)

    settings = Settings()

    assert key not in repr(settings)
    assert key not in str(settings.model_dump())
    assert settings.secret_key.get_secret_value() == key


@pytest.mark.parametrize("delays", ["", "10s,1s", "ten seconds", "5x"])
def test_bad_retry_delays_are_rejected(delays: str) -> None:
    with pytest.raises(ValidationError, match="retry_delays"):
        Settings(retry_delays=delays)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kafka_bootstrap", "garbage"),
        ("kafka_bootstrap", "127.0.0.1:notaport"),
        ("kafka_bootstrap", "127.0.0.1:70000"),
        ("database_url", "garbage"),
        ("database_url", "postgresql://u:p@127.0.0.1:x/db"),
        ("database_url", "postgresql://u:p@127.0.0.1:5432"),
        ("mqtt_port", "99999"),
    ],
)
def test_bad_addresses_are_rejected_naming_the_setting(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_durations_parse_with_units() -> None:
    assert [parse_duration_ms(t) for t in ("250ms", "10s", "1m", "1h")] == [
        250,
        10_000,
        60_000,
        3_600_000,
    ]


def test_secrets_round_trip_and_rotate_to_a_new_key() -> None:
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox(old_key).encrypt({"password": "hunter2"})

    rotated = SecretBox(new_key, [old_key]).rotate(token)

    assert "hunter2" not in token
    assert SecretBox(new_key).decrypt(rotated) == {"password": "hunter2"}
    with pytest.raises(SecretsError):
        SecretBox(new_key).decrypt(token)


def make_record() -> logging.LogRecord:
    logger = logging.getLogger("switchboard.test")
    return logger.makeRecord(
        logger.name,
        logging.INFO,
        __file__,
        1,
        "job delivered",
        None,
        None,
        extra={"job_id": "j1", "attempt": 2},
    )


def test_text_format_appends_fields() -> None:
    line = TextFormatter().format(make_record())

    assert "INFO" in line
    assert line.endswith("switchboard.test job delivered job_id=j1 attempt=2")


def test_json_format_has_fields_as_keys() -> None:
    document = json.loads(JsonFormatter().format(make_record()))

    assert document["message"] == "job delivered"
    assert document["job_id"] == "j1"
    assert document["attempt"] == 2


def test_printing_settings_masks_the_database_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "postgresql://switchboard:s3cr3t-pw@db.example:5432/switchboard"
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)

    settings = Settings()

    for printed in (repr(settings), str(settings)):
        assert "s3cr3t-pw" not in printed
        assert "postgresql://switchboard:***@db.example:5432/switchboard" in printed
    # Code that connects still reads the whole URL.
    assert settings.database_url == url


def test_masked_url_hides_a_password_in_the_user_part_or_the_query() -> None:
    assert masked_url(
        "postgresql://u:p%40ss@[::1]:5432/db?password=x&sslmode=require"
    ) == ("postgresql://u:***@[::1]:5432/db?password=***&sslmode=require")
    assert masked_url("postgresql://u@h:5432/db") == "postgresql://u@h:5432/db"
    assert database_address("postgresql://u:pw@h:6543/db") == "h:6543/db"


@pytest.mark.parametrize("redirected", [True, False], ids=["file", "columns-set"])
def test_console_is_wide_when_output_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redirected: bool
) -> None:
    if redirected:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", "97")
    with (tmp_path / "out.txt").open("w") as stream:
        monkeypatch.setattr("sys.stdout", stream)
        width = make_console().width

    assert width == (NON_TERMINAL_WIDTH if redirected else 97)
