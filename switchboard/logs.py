"""Logging set up once per process, every logger through one root handler.

Modules log with ``logging.getLogger(__name__)``; their names all start with
``switchboard`` or ``services``. Messages are constant strings and the facts go
in ``extra`` fields, which the text format appends as ``key=value`` pairs and
the JSON format emits as keys.

:func:`configure_logging` puts the one handler on Python's root logger, so the
libraries we use (uvicorn, aiomqtt, httpx, pysnmp, aiosmtplib, aiosmtpd,
asyncio, Python warnings, uncaught exceptions in threads) come out in the same
format as our own lines, never
as bare text that would break ``SWITCHBOARD_LOG_FORMAT=json``. Libraries log at
WARNING and above only; what they say below that is their normal flow.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime

ROOT_LOGGERS = ("switchboard", "services")

# Libraries whose chatter is normal flow; they log at WARNING and above only.
# httpx and httpcore log request URLs at INFO, and webhook URLs embed tokens, so
# they stay at WARNING even when our own level is DEBUG.
LIBRARY_LOGGERS = (
    "httpx",
    "httpcore",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "mqtt",
    "pysnmp",
    "aiosmtplib",
    "mail.log",
    "asyncio",
    "py.warnings",
)
LIBRARY_LEVEL = logging.WARNING

# Library warnings that are normal flow for us, as (logger, message template):
# aiomqtt warns whenever more than a handful of publishes await their
# acknowledgement, which under load is simply what a busy sender looks like.
DEMOTED_TO_DEBUG = (("mqtt", "There are %d pending publish calls."),)

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


class DemoteToDebug(logging.Filter):
    """Turns the given messages of one library logger into DEBUG records.

    A filter on the library's own logger runs before any handler, so every
    handler sees the record as DEBUG, and ours drops it unless the configured
    level is DEBUG.
    """

    def __init__(self, templates: set[str]) -> None:
        """Demote records whose unformatted message is one of ``templates``."""
        super().__init__()
        self.templates = templates

    def filter(self, record: logging.LogRecord) -> bool:
        """Lower a listed record to DEBUG; never drops a record itself."""
        if record.msg in self.templates and record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


# The handler this module installed, so a second call replaces it instead of
# adding another, and leaves handlers others put on the root (pytest's) alone.
_installed: logging.Handler | None = None


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send every logger of the process through one stderr handler; safe to call twice.

    Our loggers log at ``level``; library loggers at WARNING or above (or at
    ``level`` if that is higher).
    """
    global _installed
    threshold = logging.getLevelName(level.upper())
    if not isinstance(threshold, int):
        threshold = logging.INFO
    library_threshold = max(threshold, LIBRARY_LEVEL)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.setLevel(threshold)
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    _installed = handler
    # Loggers nobody named here (any other library) inherit the root's level.
    root.setLevel(library_threshold)

    for name in ROOT_LOGGERS:
        _route_to_root(logging.getLogger(name), threshold)
    for name in LIBRARY_LOGGERS:
        _route_to_root(logging.getLogger(name), library_threshold)
    for name in {logger for logger, _ in DEMOTED_TO_DEBUG}:
        logger = logging.getLogger(name)
        templates = {t for n, t in DEMOTED_TO_DEBUG if n == name}
        logger.filters = [f for f in logger.filters if not isinstance(f, DemoteToDebug)]
        logger.addFilter(DemoteToDebug(templates))
    # warnings.warn and a thread's uncaught exception would otherwise print
    # bare lines to stderr.
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """Log a thread's uncaught exception, with its traceback, as one record."""
    if args.exc_type is SystemExit:
        return
    logging.getLogger(__name__).error(
        "uncaught exception in thread",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"in_thread": args.thread.name if args.thread else None},
    )


def _route_to_root(logger: logging.Logger, level: int) -> None:
    """Drop a logger's own handlers (uvicorn's, say) so it reaches only the root's."""
    for own in list(logger.handlers):
        logger.removeHandler(own)
    logger.setLevel(level)
    logger.propagate = True
