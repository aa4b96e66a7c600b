"""Throttle windows in memory: decisions over open batches, commit and rollback."""

from __future__ import annotations

from services.router.throttle import (
    ThrottleState,
    decode_sent_at,
    encode_sent_at,
    rule_of_key,
    throttle_key,
)

MINUTE_MS = 60_000
KEY = throttle_key("rule-1", "OPEN", "tenant-a", "alert/with/slashes")


def state_with_partition() -> ThrottleState:
    """A state owning partition 0 with no windows."""
    state = ThrottleState()
    state.load(0, {})
    return state


def test_repeat_inside_the_window_is_suppressed() -> None:
    """A send opens a window; a repeat inside it is suppressed, after it sent."""
    state = state_with_partition()
    state.begin_batch()

    assert state.should_send(0, KEY, 10, 0)
    assert not state.should_send(0, KEY, 10, 9 * MINUTE_MS)
    assert state.should_send(0, KEY, 10, 10 * MINUTE_MS)


def test_a_suppressed_repeat_does_not_extend_the_window() -> None:
    """The window counts from the last send, not from the last suppression."""
    state = state_with_partition()
    state.begin_batch()
    state.should_send(0, KEY, 10, 0)
    state.should_send(0, KEY, 10, 8 * MINUTE_MS)

    assert state.should_send(0, KEY, 10, 10 * MINUTE_MS)


def test_next_batch_builds_on_the_one_committing() -> None:
    """A batch prepared while the previous commits sees its windows."""
    state = state_with_partition()
    state.begin_batch()
    state.should_send(0, KEY, 10, 0)
    state.begin_batch()

    assert not state.should_send(0, KEY, 10, MINUTE_MS)
    state.commit()
    assert state.size() == 1


def test_rollback_forgets_every_open_batch() -> None:
    """After an abort nothing of the open batches counts as sent."""
    state = state_with_partition()
    state.begin_batch()
    state.should_send(0, KEY, 10, 0)
    state.begin_batch()

    state.rollback()

    state.begin_batch()
    assert state.should_send(0, KEY, 10, MINUTE_MS)
    assert state.size() == 0


def test_batch_changes_are_only_the_newest_batch() -> None:
    """Each transaction carries the changelog records of its own batch."""
    state = state_with_partition()
    state.begin_batch()
    state.should_send(0, KEY, 10, 0)
    state.begin_batch()
    other = throttle_key("rule-1", "CLOSED", "tenant-a", "alert/with/slashes")
    state.should_send(0, other, 10, 0)

    assert list(state.batch_changes()) == [(0, other, 0)]


def test_expire_tombstones_passed_and_orphaned_windows() -> None:
    """Windows end when event time passed them or their rule stopped throttling."""
    state = ThrottleState()
    gone = throttle_key("rule-gone", "OPEN", "t", "a")
    live = throttle_key("rule-1", "OPEN", "t", "b")
    state.load(0, {KEY: 0, gone: 20 * MINUTE_MS, live: 20 * MINUTE_MS})
    state.begin_batch()
    state.should_send(0, throttle_key("rule-1", "OPEN", "t", "c"), 10, 25 * MINUTE_MS)

    state.expire({"rule-1": 10}.get)

    changes = {key: sent_at for _p, key, sent_at in state.batch_changes()}
    assert changes[KEY] is None and changes[gone] is None
    assert live not in changes


def test_keys_and_values_round_trip() -> None:
    """The rule is the key's first part; values are decimal milliseconds."""
    assert rule_of_key(KEY) == "rule-1"
    assert decode_sent_at(encode_sent_at(1_700_000_000_123)) == 1_700_000_000_123
    assert decode_sent_at(b"not a number") is None


def test_a_follow_up_passes_once_the_alert_opened_again() -> None:
    """OPEN, CLOSED, OPEN again, CLOSED inside the CLOSED window: the second CLOSED
    resolves what the second OPEN opened, so it is sent; a third is suppressed."""
    state = state_with_partition()
    opened = throttle_key("rule-1", "OPEN", "tenant-a", "a")
    closed = throttle_key("rule-1", "CLOSED", "tenant-a", "a")
    state.begin_batch()

    assert state.should_send(0, opened, 15, 0)
    assert state.should_send(0, closed, 15, 14 * MINUTE_MS, opened)
    assert state.should_send(0, opened, 15, 16 * MINUTE_MS)
    assert state.should_send(0, closed, 15, 17 * MINUTE_MS, opened)
    assert not state.should_send(0, closed, 15, 18 * MINUTE_MS, opened)


def test_a_follow_up_of_a_suppressed_reopen_stays_suppressed() -> None:
    """An OPEN suppressed inside its window never reached the receiver, so the
    CLOSED after it has nothing to resolve there."""
    state = state_with_partition()
    opened = throttle_key("rule-1", "OPEN", "tenant-a", "a")
    closed = throttle_key("rule-1", "CLOSED", "tenant-a", "a")
    state.begin_batch()

    assert state.should_send(0, opened, 15, 0)
    assert state.should_send(0, closed, 15, MINUTE_MS, opened)
    assert not state.should_send(0, opened, 15, 5 * MINUTE_MS)
    assert not state.should_send(0, closed, 15, 6 * MINUTE_MS, opened)


def test_rollback_forgets_the_event_time_of_aborted_batches() -> None:
    """Events of an aborted batch are routed again; until then they must not end
    a window that a later event of the rewound stream still falls into."""
    state = state_with_partition()
    state.begin_batch()
    assert state.should_send(0, KEY, 10, 0)
    state.commit()
    state.begin_batch()
    state.should_send(0, throttle_key("rule-1", "OPEN", "t", "b"), 10, 12 * MINUTE_MS)

    state.rollback()

    state.begin_batch()
    state.expire({"rule-1": 10}.get)
    assert list(state.batch_changes()) == []
    assert not state.should_send(0, KEY, 10, 5 * MINUTE_MS)
