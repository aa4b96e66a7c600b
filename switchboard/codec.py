"""Avro single-object encoding for every message Switchboard writes to Kafka.

A message is ``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the
writer's schema, then the Avro body. The codec knows every version of every
schema in ``schemas/``; it finds the writer's version by fingerprint and reads
into the reader's version (the newest, unless pinned), so producers and
consumers can be upgraded independently.

Exceptions, all subclasses of :class:`CodecError`::

    CodecError
    ├── UnknownSchemaError      not single-object encoded, unknown fingerprint,
    │                           or a fingerprint of another record type
    ├── MalformedMessageError   the body does not decode (truncated, corrupt)
    └── InvalidRecordError      a record to encode does not fit its schema

A consumer catches :class:`CodecError` around ``decode`` and dead-letters the
message with ``str(error)`` as the reason.
"""

from __future__ import annotations

import copy
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from switchboard.settings import PROJECT_ROOT

SCHEMA_DIR = PROJECT_ROOT / "schemas"
SINGLE_OBJECT_MARKER = b"\xc3\x01"
HEADER_LENGTH = len(SINGLE_OBJECT_MARKER) + 8

_FILE_PATTERN = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>\d+)\.avsc$"
)
_REFERENCE_PATTERN = re.compile(r"^(?P<name>[A-Za-z0-9_.]+)@(?P<version>\d+)$")


class CodecError(Exception):
    """Base of every error the codec raises."""


class UnknownSchemaError(CodecError):
    """Raised when a message's schema cannot be identified as the expected record."""


class MalformedMessageError(CodecError):
    """Raised when a message's body does not decode with its writer's schema."""


class InvalidRecordError(CodecError):
    """Raised when a record given to ``encode`` does not fit its schema."""


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one record schema, parsed and fingerprinted."""

    record: str
    version: int
    parsed: Any
    fingerprint: bytes


def _expand_references(node: Any, raw: dict[tuple[str, int], dict]) -> Any:
    """Replace ``"namespace.Record@N"`` type strings with that version's schema."""
    if isinstance(node, str):
        match = _REFERENCE_PATTERN.match(node)
        if not match:
            return node
        short_name = match.group("name").rsplit(".", 1)[-1]
        key = (short_name, int(match.group("version")))
        if key not in raw:
            raise ValueError(f"schema reference to unknown version: {node}")
        return _expand_references(copy.deepcopy(raw[key]), raw)
    if isinstance(node, list):
        return [_expand_references(item, raw) for item in node]
    if isinstance(node, dict):
        return {key: _expand_references(value, raw) for key, value in node.items()}
    return node


def load_schema_versions(schema_dir: Path = SCHEMA_DIR) -> list[SchemaVersion]:
    """Read and parse every ``<Record>.v<N>.avsc`` file in ``schema_dir``."""
    raw: dict[tuple[str, int], dict] = {}
    for path in sorted(schema_dir.glob("*.avsc")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise ValueError(f"schema file name must be <Record>.v<N>.avsc: {path}")
        raw[(match.group("name"), int(match.group("version")))] = json.loads(
            path.read_text()
        )

    versions = []
    for (record, version), schema in sorted(raw.items()):
        expanded = _expand_references(schema, raw)
        parsed = parse_schema(expanded, _write_hint=False)
        canonical = to_parsing_canonical_form(parsed)
        digest = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        versions.append(SchemaVersion(record, version, parsed, digest))
    return versions


class Codec:
    """Encodes and decodes Switchboard's records in Avro single-object encoding."""

    def __init__(
        self,
        versions: list[SchemaVersion] | None = None,
        reader_versions: dict[str, int] | None = None,
    ) -> None:
        """Build a codec over ``versions`` (default: ``schemas/``).

        ``reader_versions`` pins the version a record is read into and written
        with; records not named there use their newest version.
        """
        versions = versions if versions is not None else load_schema_versions()
        self._by_fingerprint = {v.fingerprint: v for v in versions}
        # fastavro re-parses a schema on every call unless it carries its own
        # parse marker; parsing once here makes encode and decode 2-3x faster.
        self._prepared = {v.fingerprint: parse_schema(v.parsed) for v in versions}
        self._current: dict[str, SchemaVersion] = {}
        for version in versions:
            pinned = (reader_versions or {}).get(version.record)
            newest = self._current.get(version.record)
            if pinned is not None:
                if version.version == pinned:
                    self._current[version.record] = version
            elif newest is None or version.version > newest.version:
                self._current[version.record] = version
        missing = set(reader_versions or {}) - set(self._current)
        if missing:
            raise ValueError(f"pinned schema versions not found: {sorted(missing)}")

    def schema(self, record: str) -> SchemaVersion:
        """The version of ``record`` this codec writes and reads into."""
        try:
            return self._current[record]
        except KeyError:
            raise ValueError(f"no schema for record {record!r}") from None

    def encode(self, record: str, value: dict[str, Any]) -> bytes:
        """Encode ``value`` as ``record`` in this codec's version."""
        schema = self.schema(record)
        buffer = io.BytesIO()
        buffer.write(SINGLE_OBJECT_MARKER)
        buffer.write(schema.fingerprint)
        try:
            prepared = self._prepared[schema.fingerprint]
            fastavro.schemaless_writer(buffer, prepared, value)
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            OverflowError,
        ) as error:
            raise InvalidRecordError(f"{record}: {error}") from error
        return buffer.getvalue()

    def writer_schema(self, data: bytes) -> SchemaVersion:
        """Identify the schema a message was written with, by its fingerprint."""
        if len(data) < HEADER_LENGTH or data[:2] != SINGLE_OBJECT_MARKER:
            raise UnknownSchemaError("not an Avro single-object encoded message")
        writer = self._by_fingerprint.get(bytes(data[2:HEADER_LENGTH]))
        if writer is None:
            raise UnknownSchemaError(
                f"unknown schema fingerprint {bytes(data[2:HEADER_LENGTH]).hex()}"
            )
        return writer

    def decode(self, record: str, data: bytes) -> dict[str, Any]:
        """Decode a message written with any known version of ``record``."""
        writer = self.writer_schema(data)
        if writer.record != record:
            raise UnknownSchemaError(
                f"expected a {record}, got a {writer.record} v{writer.version}"
            )
        reader = self.schema(record)
        buffer = io.BytesIO(data)
        buffer.seek(HEADER_LENGTH)
        try:
            value = fastavro.schemaless_reader(
                buffer,
                self._prepared[writer.fingerprint],
                None if reader is writer else self._prepared[reader.fingerprint],
            )
        except Exception as error:
            # fastavro signals a short or corrupt body with many exception types
            # (EOFError, UnicodeDecodeError, IndexError, SchemaResolutionError, …).
            raise MalformedMessageError(
                f"{record} v{writer.version} body does not decode: "
                f"{type(error).__name__}: {error}"
            ) from error
        if buffer.tell() != len(data):
            raise MalformedMessageError(
                f"{record} v{writer.version} body has "
                f"{len(data) - buffer.tell()} trailing bytes"
            )
        return value


_default_codec: Codec | None = None


def default_codec() -> Codec:
    """The process-wide codec over ``schemas/`` with the newest versions."""
    global _default_codec
    if _default_codec is None:
        _default_codec = Codec()
    return _default_codec
