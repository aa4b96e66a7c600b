"""A backlog beyond the in-flight bound behind an endpoint that hangs.

The deliverer must keep polling (or its group evicts it, its offsets in flight
are lost and the work is done twice) and must keep delivering to every other
channel while the hanging one holds its share of the bound.
"""

from __future__ import annotations

import threading
import uuid

from confluent_kafka.admin import AdminClient

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

MAX_IN_FLIGHT = 4
HANGING_TIMEOUT_S = 8.0
HANGING_JOBS = 6
FAST_JOBS = 4
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


def test_a_hanging_endpoint_neither_evicts_the_consumer_nor_holds_other_channels(
    settings, codec, harness, receiver, admin
) -> None:
    deliverer = harness(
        retry_delays="1m",
        max_in_flight=MAX_IN_FLIGHT,
        consumer_options=CONSUMER_OPTIONS,
    )
    tenant = str(uuid.uuid4())
    hanging = publish_webhook_channel(
        settings, codec, tenant, receiver.url("/hang"), timeout_s=HANGING_TIMEOUT_S
    )
    fast = publish_webhook_channel(settings, codec, tenant, receiver.url("/fast"))
    receiver.plan("/hang", [], then=Reply(200, delay_s=30))
    stuck = [make_command(tenant, hanging) for _ in range(HANGING_JOBS)]
    flowing = [make_command(tenant, fast) for _ in range(FAST_JOBS)]
    stuck_ids = {c["job_id"] for c in stuck}
    flowing_ids = {c["job_id"] for c in flowing}
    members = GroupMembers(admin, deliverer.topics.group)

    # The hanging channel's backlog first: the fast channel's commands come
    # after more than the whole bound of commands that cannot finish soon.
    produce_commands(settings, codec, deliverer.topics.main, stuck + flowing)
    events = JobEvents(settings, codec, deliverer.jobs_topic).wait(
        lambda all_events: stuck_ids | flowing_ids <= {e["job_id"] for e in all_events},
        timeout_s=120,
    )
    snapshots = members.stop()

    timeouts = [e for e in events if e["job_id"] in stuck_ids]
    assert (
        sorted((str(e["state"]), e["reason"]) for e in timeouts)
        == [("retrying", "timeout")] * HANGING_JOBS
    )
    delivered = [e for e in events if e["job_id"] in flowing_ids]
    assert {states_of(events, job_id)[0] for job_id in flowing_ids} == {
        ("delivered", 1)
    }
    # The other channel did not wait for the hanging one's first deadline.
    assert max(e["occurred_at"] for e in delivered) < min(
        e["occurred_at"] for e in timeouts
    )
    # Each hanging job reached its endpoint once: nothing was redone by a new
    # owner of the partition after an eviction.
    hung = [r.webhook_id for r in receiver.received("/hang")]
    assert sorted(hung) == sorted(stuck_ids)
    # One member the whole time: the consumer never left its group.
    assert snapshots and len(set(snapshots)) == 1 and len(snapshots[0]) == 1
    assert deliverer.failure is None


def test_one_channel_never_holds_every_slot() -> None:
    limits = InFlightLimits(MAX_IN_FLIGHT, channel_share(MAX_IN_FLIGHT, 16))

    while limits.admits("hanging"):
        limits.take("hanging")

    assert not limits.full() and limits.admits("other")
    limits.take("other")
    limits.take("other")
    assert limits.full() and not limits.admits(None)
    limits.release("hanging")
    assert limits.admits("hanging") and limits.admits(None)
    assert not limits.admits("other")
