"""Logging set up once per process under the ``switchboard`` root logger.

Modules log with ``logging.getLogger(__name__)``; their names all start with
``switchboard`` or ``services`` and both are routed here. Messages are constant
strings and the facts go in ``extra`` fields, which the text format appends as
``key=value`` pairs and the JSON format emits as keys.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

ROOT_LOGGERS = ("switchboard", "services")

# Libraries that log request URLs at INFO; webhook URLs can embed tokens.
QUIET_LIBRARY_LOGGERS = ("httpx", "httpcore")

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRIBUTES = set(
    logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "taskName"}


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields a caller attached to a record through ``extra``."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """``time level logger message key=value …`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a single line, with any exception after it."""
        timestamp = datetime.fromtimestamp(record.created, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        fields = " ".join(f"{k}={v}" for k, v in record_fields(record).items())
        line = f"{timestamp} {record.levelname:<7} {record.name} {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a JSON object."""
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(record_fields(record))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Attach one stderr handler to the project's root loggers; safe to call twice."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    for name in ROOT_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    for name in QUIET_LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
