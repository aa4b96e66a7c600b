"""Character-safe, visible truncation shared by every channel's message builder."""

from __future__ import annotations

TRUNCATION_MARKER = "… [truncated]"


def truncate_chars(text: str, max_chars: int, marker: str = TRUNCATION_MARKER) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, ending with ``marker`` if cut.

    Python strings are sequences of code points, so a cut never splits a
    multi-byte UTF-8 sequence.
    """
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - len(marker))] + marker[:max_chars]


def truncate_utf8(text: str, max_bytes: int, marker: str = TRUNCATION_MARKER) -> str:
    """Cut ``text`` so its UTF-8 encoding fits ``max_bytes``, never mid-character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    budget = max(0, max_bytes - len(marker.encode("utf-8")))
    # Decoding with "ignore" drops a partial trailing sequence left by the cut.
    return encoded[:budget].decode("utf-8", errors="ignore") + marker
