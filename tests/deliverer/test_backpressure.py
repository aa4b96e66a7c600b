"""A backlog behind an endpoint that hangs, on the partition of a healthy channel.

The deliverer must keep polling (or its group evicts it, its offsets in flight
are lost and the work is done twice), and must keep delivering to every other
channel of the partition while the hanging one holds its share: the hanging
channel's overflow is deferred to a retry tier instead of holding the
partition. Deferring is not an attempt, so those jobs still end dead after
their attempts, each of which reached the endpoint once.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter

from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from services.deliverer.limits import InFlightLimits
from services.deliverer.service import channel_share
from services.receivers.webhook import Reply
from tests.deliverer.helpers import (
    JobEvents,
    make_command,
    produce_commands,
    publish_webhook_channel,
    states_of,
)

# Room for the whole backlog in memory, so that only the hanging channel's
# share and pace decide; a share of 16 (four rounds of 4 attempts).
MAX_IN_FLIGHT = 48
PER_CHANNEL = 4
HANGING_TIMEOUT_S = 3.0
MAX_ATTEMPTS = 2
# More than the share, plus what the channel takes in before its pace is known
# (PACE_WINDOW_S), so that some of it is deferred.
HANGING_JOBS = 32
FAST_JOBS = 4
FINAL_STATES = {"delivered", "dead"}
# Shorter than one hanging attempt: a consumer that stops polling until a slot
# frees up is evicted. librdkafka wants it at least the session timeout, and
# the broker's shortest session timeout is 6 s.
CONSUMER_OPTIONS = {"max.poll.interval.ms": 6000, "session.timeout.ms": 6000}
MEMBERS_POLL_S = 0.5


class GroupMembers:
    """Watches a consumer group's member ids from a thread until stopped."""

    def __init__(self, admin: AdminClient, group: str) -> None:
        """Start describing ``group`` every MEMBERS_POLL_S."""
        self._admin = admin
        self._group = group
        self.seen: list[tuple[str, ...]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[str, ...]]:
        """Stop watching; every snapshot taken since the group had a member."""
        self._stopping.set()
        self._thread.join(30)
        first = next((i for i, ids in enumerate(self.seen) if ids), len(self.seen))
        return self.seen[first:]

    def _watch(self) -> None:
        while not self._stopping.wait(MEMBERS_POLL_S):
            futures = self._admin.describe_consumer_groups([self._group])
            description = futures[self._group].result(10)
            self.seen.append(tuple(sorted(m.member_id for m in description.members)))


def deferrals() -> float:
    """Commands deferred so far by this process's webhook deliverers."""
    value = REGISTRY.get_sample_value(
        "switchboard_delivery_deferrals_total", {"channel_type": "webhook"}
    )
    return value or 0.0


def test_a_hanging_endpoint_defers_its_overflow_and_holds_no_other_channel(
    settings, codec, harness, receiver, admin
) -> None:
    deferred_before = deferrals()
    deliverer = harness(
        partitions=1,
        retry_delays="2s",
        max_attempts=MAX_ATTEMPTS,
        max_in_flight=MAX_IN_FLIGHT,
        per_channel=PER_CHANNEL,
        consumer_options=CONSUMER_OPTIONS,
    )
    tenant = str(uuid.uuid4())
    hanging = publish_webhook_channel(
        settings, codec, tenant, receiver.url("/hang"), timeout_s=HANGING_TIMEOUT_S
    )
    fast = publish_webhook_channel(settings, codec, tenant, receiver.url("/fast"))
    receiver.plan("/hang", [], then=Reply(200, delay_s=60))
    stuck = [make_command(tenant, hanging) for _ in range(HANGING_JOBS)]
    behind = [make_command(tenant, fast) for _ in range(FAST_JOBS)]
    later = [make_command(tenant, fast) for _ in range(FAST_JOBS)]
    stuck_ids = {c["job_id"] for c in stuck}
    fast_ids = {c["job_id"] for c in behind + later}
    watchers = [
        GroupMembers(admin, group)
        for group in (deliverer.topics.group, deliverer.topics.retry_group)
    ]

    # One partition: the fast channel's first commands come after the whole
    # backlog of the hanging one; its others arrive once the hanging channel
    # holds its full share and more of its commands wait.
    produce_commands(settings, codec, deliverer.topics.main, stuck + behind)
    receiver.wait_for(1, "/hang")
    produce_commands(settings, codec, deliverer.topics.main, later)
    events = JobEvents(settings, codec, deliverer.jobs_topic).wait(
        lambda all_events: (
            stuck_ids | fast_ids
            <= {e["job_id"] for e in all_events if str(e["state"]) in FINAL_STATES}
        ),
        timeout_s=180,
    )
    snapshots = [watcher.stop() for watcher in watchers]

    # Nothing lost, and a deferral is no attempt: each hanging job timed out
    # once per attempt, then went dead.
    for job_id in stuck_ids:
        assert states_of(events, job_id) == [("retrying", 1), ("dead", MAX_ATTEMPTS)]
    for job_id in fast_ids:
        assert states_of(events, job_id) == [("delivered", 1)]
    assert deferrals() > deferred_before
    # The fast channel did not wait for the hanging one's first deadline.
    first_timeout = min(e["occurred_at"] for e in events if e["job_id"] in stuck_ids)
    assert all(
        e["occurred_at"] < first_timeout for e in events if e["job_id"] in fast_ids
    )
    # Each hanging job reached its endpoint once per attempt, no more: nothing
    # was redone by a new owner of the partition after an eviction.
    hung = Counter(r.webhook_id for r in receiver.received("/hang"))
    assert hung == dict.fromkeys(stuck_ids, MAX_ATTEMPTS)
    # One member in each group the whole time: no consumer left its group.
    for seen in snapshots:
        assert seen and len(set(seen)) == 1 and len(seen[0]) == 1
    assert deliverer.failure is None


def test_one_channel_never_holds_every_slot() -> None:
    limits = InFlightLimits(4, channel_share(4, 16))

    while limits.admits("hanging"):
        limits.take("hanging")

    assert not limits.full() and limits.admits("other")
    limits.take("other")
    limits.take("other")
    assert limits.full() and not limits.admits(None)
    limits.release("hanging")
    assert limits.admits("hanging") and limits.admits(None)
    assert not limits.admits("other")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        """Start at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        """The current time."""
        return self.now


def test_a_full_share_keeps_waiting_what_it_took_in_over_the_last_window() -> None:
    clock = FakeClock()
    limits = InFlightLimits(100, 4, window_s=5.0, clock=clock)
    for _ in range(4):
        limits.take("channel")
    limits.add_waiting("channel")

    # Its pace is not known before a whole window at full share.
    clock.now = 4.9
    assert limits.may_wait("channel") is None
    clock.now = 5.0
    assert limits.may_wait("channel") == 0

    # Three taken in turn during the last window; the first leaves it.
    for at in (6.0, 7.0, 8.0):
        clock.now = at
        limits.release("channel")
        limits.take("channel")
    assert limits.may_wait("channel") == 3
    clock.now = 11.5
    assert limits.may_wait("channel") == 2


def _full_share_for_ten_seconds() -> tuple[FakeClock, InFlightLimits]:
    """A channel whose share of 2 has been full, with nothing released, for 10 s."""
    clock = FakeClock()
    limits = InFlightLimits(100, 2, window_s=5.0, clock=clock)
    limits.take("channel")
    limits.take("channel")
    clock.now = 10.0
    assert limits.may_wait("channel") == 0
    return clock, limits


def test_a_share_that_drains_for_a_moment_keeps_its_pace() -> None:
    clock, limits = _full_share_for_ten_seconds()

    # A hanging endpoint's attempts time out together: its share drains
    # completely, and fills again at once.
    limits.release("channel")
    limits.release("channel")
    clock.now = 10.5
    limits.take("channel")
    limits.take("channel")
    limits.add_waiting("channel")
    assert limits.may_wait("channel") == 2

    # Nothing released for a window: nothing more may wait.
    clock.now = 16.0
    assert limits.may_wait("channel") == 0


def test_a_channel_calm_for_a_window_is_judged_afresh() -> None:
    clock, limits = _full_share_for_ten_seconds()

    # Room in its share and nothing waiting: not saturated.
    limits.release("channel")
    assert limits.may_wait("channel") is None
    clock.now = 15.0
    limits.take("channel")
    clock.now = 16.0
    assert limits.may_wait("channel") is None
    assert limits.may_wait(None) is None and limits.may_wait("unknown") is None


def test_channels_idle_for_a_window_are_forgotten() -> None:
    clock = FakeClock()
    limits = InFlightLimits(100, 2, window_s=5.0, clock=clock)
    for number in range(50):
        limits.take(f"channel-{number}")
        limits.release(f"channel-{number}")

    clock.now = 11.0
    limits.take("busy")

    assert set(limits._channels) == {"busy"}
