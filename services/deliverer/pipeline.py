"""One command's way through the deliverer: resolve, attempt, settle.

Settling turns the attempt's outcome into messages, all awaited until the
broker acknowledged them, because the caller stores the input offset as soon as
:meth:`Pipeline.handle` returns:

- delivered: a ``delivered`` job event;
- retryable with attempts left: the command with the next attempt number and its
  ``not_before`` on a retry tier, and a ``retrying`` job event;
- permanent, or the last attempt: the command on the dead-letter topic with the
  reason in headers, and a ``dead`` job event;
- channel deleted or disabled: a ``cancelled`` job event;
- an error that is not Kafka's (a bug this command trips every time): the
  command on the dead-letter topic with reason ``internal_error``, and a
  ``dead`` job event.

:meth:`Pipeline.defer` sets aside, unattempted, a command whose channel is too
slow to take it now: the same command, attempt number unchanged, on a retry
tier with a new ``not_before``, and no job event (see the consumer).

Error text is redacted of the channel's secrets before it leaves the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram

from services.deliverer.channels.base import ResolvedChannel, Sender
from services.deliverer.kafka_io import KAFKA_FAILURES, AsyncProducer, Headers
from services.deliverer.ladder import RetryLadder, RetryPlan
from services.deliverer.limits import KeyedLimiter
from services.deliverer.outcome import Outcome, OutcomeKind, Reason
from services.deliverer.redact import redact
from services.deliverer.resolve import ChannelResolver
from services.deliverer.retry_tally import RetryTally
from services.deliverer.topology import TypeTopics
from switchboard.codec import Codec
from switchboard.domain import JobState
from switchboard.jobs import job_event

log = logging.getLogger(__name__)

ATTEMPTS = Counter(
    "switchboard_delivery_attempts_total",
    "Delivery attempts by channel type, outcome and reason.",
    ["channel_type", "outcome", "reason"],
)
DEFERRALS = Counter(
    "switchboard_delivery_deferrals_total",
    "Commands set aside unattempted to a retry tier while their channel was slow.",
    ["channel_type"],
)
ATTEMPT_SECONDS = Histogram(
    "switchboard_delivery_attempt_seconds",
    "Duration of one delivery attempt.",
    ["channel_type"],
)

# Dead-letter headers, read by operators and the dead-letter replay tooling.
HEADER_REASON = "switchboard.reason"
HEADER_ERROR = "switchboard.error"
HEADER_FINAL = "switchboard.final"
HEADER_ATTEMPT = "switchboard.attempt"
HEADER_SOURCE_TOPIC = "switchboard.source-topic"
HEADER_SOURCE_PARTITION = "switchboard.source-partition"
HEADER_SOURCE_OFFSET = "switchboard.source-offset"

CANCELLING_REASONS = frozenset({Reason.CHANNEL_GONE, Reason.CHANNEL_DISABLED})


@dataclass(frozen=True)
class Incoming:
    """A consumed message and the command decoded from it (None if it did not)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    command: dict[str, Any] | None
    decode_error: str | None = None


class Pipeline:
    """Delivers commands with the senders of the served channel types."""

    def __init__(
        self,
        codec: Codec,
        producer: AsyncProducer,
        resolver: ChannelResolver,
        senders: dict[str, Sender],
        topics: dict[str, TypeTopics],
        jobs_topic: str,
        max_attempts: int,
        per_channel: int,
    ) -> None:
        """Wire the pipeline; ``topics`` and ``senders`` are keyed by channel type."""
        self._codec = codec
        self._producer = producer
        self._resolver = resolver
        self._senders = senders
        self._topics = topics
        self._jobs_topic = jobs_topic
        self._ladders = {
            channel_type: RetryLadder(list(t.tiers), max_attempts)
            for channel_type, t in topics.items()
        }
        self._per_channel = KeyedLimiter(per_channel)
        self._retries = RetryTally()
        self._deferrals = RetryTally(message="commands deferred", field="by_tier")

    async def handle(self, item: Incoming, served_type: str, delivered: bool) -> None:
        """Process one consumed message; returns once its outcome is durable.

        Raises only one of :data:`KAFKA_FAILURES`, when Kafka did not take a
        message the outcome needs. Any other error is a bug that this command
        would trip again after every restart, so the command is dead-lettered
        with ``internal_error`` instead.
        """
        known = _KnownSecrets()
        try:
            await self._handle(item, served_type, delivered, known)
        except KAFKA_FAILURES:
            raise
        except Exception as error:
            await self._internal_error(item, served_type, error, known.values)

    async def defer(self, item: Incoming, served_type: str) -> None:
        """Set a decoded command aside unattempted; returns once the broker has it.

        Raises only one of :data:`KAFKA_FAILURES`; any other error dead-letters
        the command with ``internal_error``, as in :meth:`handle`.
        """
        try:
            await self._defer(item, served_type)
        except KAFKA_FAILURES:
            raise
        except Exception as error:
            await self._internal_error(item, served_type, error, ())

    async def _defer(self, item: Incoming, served_type: str) -> None:
        command = item.command
        assert command is not None, "only decoded commands are deferred"
        plan = self._ladders[served_type].defer(command["attempt"], datetime.now(UTC))
        deferred = {**command, "not_before": plan.not_before}
        await self._producer.send(
            plan.tier.topic,
            command["channel_id"],
            self._codec.encode("DeliveryCommand", deferred),
        )
        DEFERRALS.labels(served_type).inc()
        # Normal flow while a channel is slow: DEBUG, plus a summary a minute.
        log.debug(
            "command deferred; channel slow",
            extra={**_fields(command), "tier": plan.tier.label},
        )
        self._deferrals.count(served_type, plan.tier.label)

    async def _handle(
        self,
        item: Incoming,
        served_type: str,
        delivered: bool,
        known: _KnownSecrets,
    ) -> None:
        command = item.command
        if command is None:
            await self._dead_letter(
                item, served_type, Reason.UNDECODABLE, item.decode_error, "permanent"
            )
            return
        if str(command["channel_type"]) != served_type:
            error = f"command for {command['channel_type']} on the {served_type} topic"
            outcome = Outcome.permanent(Reason.WRONG_CHANNEL_TYPE, error)
            await self._settle(item, served_type, command, outcome, (), None)
            return
        if delivered:
            log.debug("job already delivered; not sent again", extra=_fields(command))
            return
        await self._deliver(item, served_type, command, known)

    async def _deliver(
        self,
        item: Incoming,
        served_type: str,
        command: dict[str, Any],
        known: _KnownSecrets,
    ) -> None:
        resolution = await self._resolver.resolve(command)
        known.values = resolution.secrets
        if resolution.failure is not None:
            if resolution.failure.reason in CANCELLING_REASONS:
                await self._cancel(command, resolution.failure)
                return
            await self._settle(
                item, served_type, command, resolution.failure, resolution.secrets, None
            )
            return
        outcome, duration_ms = await self._attempt(
            command, resolution.channel, resolution.secrets
        )
        await self._settle(
            item, served_type, command, outcome, resolution.secrets, duration_ms
        )

    async def _attempt(
        self,
        command: dict[str, Any],
        channel: ResolvedChannel,
        secrets: tuple[str, ...],
    ) -> tuple[Outcome, int]:
        sender = self._senders[channel.channel_type]
        timeout_s = channel.config.timeout_s
        async with self._per_channel.hold(channel.id):
            started = time.monotonic()
            try:
                async with asyncio.timeout(timeout_s):
                    outcome = await sender.send(command, channel)
            except TimeoutError:
                outcome = Outcome.retryable(
                    Reason.TIMEOUT, f"no complete response within {timeout_s:g} s"
                )
            except Exception as error:
                # A sender maps third-party errors itself; anything else is a bug
                # in it, retried in case it is transient. No traceback: its
                # frames and message may hold the channel's secrets.
                text = redact(f"{type(error).__name__}: {error}", secrets)
                log.error(
                    "sender raised instead of returning",
                    extra={**_fields(command), "error": text},
                )
                outcome = Outcome.retryable(
                    Reason.INTERNAL_ERROR, f"sender error: {text}"
                )
            elapsed_s = time.monotonic() - started
        ATTEMPTS.labels(channel.channel_type, outcome.kind, outcome.reason).inc()
        ATTEMPT_SECONDS.labels(channel.channel_type).observe(elapsed_s)
        return outcome, int(elapsed_s * 1000)

    async def _settle(
        self,
        item: Incoming,
        served_type: str,
        command: dict[str, Any],
        outcome: Outcome,
        secrets: tuple[str, ...],
        duration_ms: int | None,
    ) -> None:
        error = redact(outcome.error, secrets)
        if outcome.kind is OutcomeKind.DELIVERED:
            await self._job_event(
                command, JobState.DELIVERED, outcome, None, duration_ms
            )
            log.debug(
                "delivered", extra={**_fields(command), "duration_ms": duration_ms}
            )
            return

        plan = None
        if outcome.kind is OutcomeKind.RETRYABLE:
            plan = self._ladders[served_type].plan(
                command["attempt"], outcome.retry_after_s, datetime.now(UTC)
            )
        if plan is not None:
            await self._retry(command, plan, outcome, error, duration_ms)
        else:
            await self._give_up(item, served_type, command, outcome, error, duration_ms)

    async def _retry(
        self,
        command: dict[str, Any],
        plan: RetryPlan,
        outcome: Outcome,
        error: str | None,
        duration_ms: int | None,
    ) -> None:
        retry = {**command, "attempt": plan.attempt, "not_before": plan.not_before}
        await asyncio.gather(
            self._producer.send(
                plan.tier.topic,
                command["channel_id"],
                self._codec.encode("DeliveryCommand", retry),
            ),
            self._job_event(
                command,
                JobState.RETRYING,
                outcome,
                error,
                duration_ms,
                next_attempt_at=plan.not_before,
            ),
        )
        # Normal flow per job: DEBUG, or a channel that is down floods the log.
        log.debug(
            "retry scheduled",
            extra={
                **_fields(command),
                "reason": outcome.reason,
                "tier": plan.tier.label,
            },
        )
        self._retries.count(str(command["channel_type"]), str(outcome.reason))

    async def _give_up(
        self,
        item: Incoming,
        served_type: str,
        command: dict[str, Any],
        outcome: Outcome,
        error: str | None,
        duration_ms: int | None,
    ) -> None:
        final = "permanent" if outcome.kind is OutcomeKind.PERMANENT else "max_attempts"
        await asyncio.gather(
            self._dead_letter(item, served_type, outcome.reason, error, final),
            self._job_event(command, JobState.DEAD, outcome, error, duration_ms),
        )
        # The final failure of a job is handled here, so it is logged here.
        log.warning(
            "delivery failed for good",
            extra={
                **_fields(command),
                "reason": outcome.reason,
                "final": final,
                "error": error,
            },
        )

    async def _cancel(self, command: dict[str, Any], outcome: Outcome) -> None:
        await self._job_event(command, JobState.CANCELLED, outcome, outcome.error, None)
        log.debug("job cancelled", extra={**_fields(command), "reason": outcome.reason})

    async def _internal_error(
        self,
        item: Incoming,
        served_type: str,
        error: Exception,
        secrets: tuple[str, ...],
    ) -> None:
        text = redact(f"{type(error).__name__}: {error}", secrets)
        outcome = Outcome.permanent(Reason.INTERNAL_ERROR, text)
        command = item.command
        # Logged here, where it is handled. No traceback text: an exception's
        # message may quote the channel's secrets; its frames name the code.
        log.error(
            "internal error; command dead-lettered",
            extra={
                **(_fields(command) if command is not None else {}),
                "topic": item.topic,
                "partition": item.partition,
                "offset": item.offset,
                "error": outcome.error,
                "where": _where(error),
            },
        )
        sends = [
            self._dead_letter(
                item, served_type, Reason.INTERNAL_ERROR, outcome.error, "permanent"
            )
        ]
        if command is not None:
            try:
                event = self._job_event_value(
                    command, JobState.DEAD, outcome, outcome.error, None
                )
            except Exception:
                # The command itself may be what fails to encode; the dead
                # letter then is the only record of it.
                event = None
            if event is not None:
                sends.append(
                    self._producer.send(self._jobs_topic, command["job_id"], event)
                )
        await asyncio.gather(*sends)

    async def _job_event(
        self,
        command: dict[str, Any],
        state: JobState,
        outcome: Outcome,
        error: str | None,
        duration_ms: int | None,
        next_attempt_at: Any = None,
    ) -> None:
        value = self._job_event_value(
            command, state, outcome, error, duration_ms, next_attempt_at
        )
        await self._producer.send(self._jobs_topic, command["job_id"], value)

    def _job_event_value(
        self,
        command: dict[str, Any],
        state: JobState,
        outcome: Outcome,
        error: str | None,
        duration_ms: int | None,
        next_attempt_at: Any = None,
    ) -> bytes:
        event = job_event(
            command,
            state,
            command["attempt"],
            status_code=outcome.status_code,
            reason=str(outcome.reason),
            error=error,
            duration_ms=duration_ms,
            next_attempt_at=next_attempt_at,
        )
        return self._codec.encode("JobEvent", event)

    async def _dead_letter(
        self,
        item: Incoming,
        served_type: str,
        reason: Reason,
        error: str | None,
        final: str,
    ) -> None:
        headers: Headers = [
            (HEADER_REASON, str(reason)),
            (HEADER_FINAL, final),
            (HEADER_SOURCE_TOPIC, item.topic),
            (HEADER_SOURCE_PARTITION, str(item.partition)),
            (HEADER_SOURCE_OFFSET, str(item.offset)),
        ]
        if error:
            headers.append((HEADER_ERROR, error))
        if item.command is not None:
            headers.append((HEADER_ATTEMPT, str(item.command["attempt"])))
        else:
            log.error(
                "undecodable command dead-lettered",
                extra={
                    "topic": item.topic,
                    "partition": item.partition,
                    "offset": item.offset,
                    "error": error,
                },
            )
        await self._producer.send(
            self._topics[served_type].dlq, item.key, item.value, headers
        )


@dataclass
class _KnownSecrets:
    """The secrets of a command's channel once resolved, to redact an error."""

    values: tuple[str, ...] = ()


# Innermost frames named in an internal error's log line.
WHERE_FRAMES = 3


def _where(error: BaseException) -> str:
    """Where ``error`` was raised: file, line and function of the last frames."""
    frames = traceback.extract_tb(error.__traceback__)[-WHERE_FRAMES:]
    return " > ".join(
        f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" for frame in frames
    )


def _fields(command: dict[str, Any]) -> dict[str, Any]:
    return {
        "tenant": command["tenant_id"],
        "channel": command["channel_id"],
        "job_id": command["job_id"],
        "attempt": command["attempt"],
    }
