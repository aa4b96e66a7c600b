"""Producing delivery commands and job events from the API, acknowledged.

The test and retry endpoints answer only after Kafka has acknowledged what they
produced, so a 202 means the job is on its way. Both use the process's shared
idempotent producer.
"""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from services.api.errors import ApiError
from switchboard.codec import Codec, CodecError
from switchboard.domain import JobState
from switchboard.jobs import job_event
from switchboard.topics import JOBS_TOPIC, delivery_topic

ACK_TIMEOUT_S = 15.0


def queue_command(producer: Producer, codec: Codec, command: dict[str, Any]) -> None:
    """Produce the ``queued`` job event and the command itself; wait for both acks.

    The job event goes first so the job is recorded as queued before any outcome
    a deliverer reports for it.
    """
    event = job_event(command, JobState.QUEUED, command["attempt"])
    try:
        messages = [
            (JOBS_TOPIC, command["job_id"], codec.encode("JobEvent", event)),
            (
                delivery_topic(command["channel_type"]),
                command["channel_id"],
                codec.encode("DeliveryCommand", command),
            ),
        ]
    except CodecError as error:
        # Only a stored alert from an older writer can fail here.
        raise ApiError(
            409, [("job_id", f"the job's stored alert is unusable: {error}")]
        ) from None
    _produce_acknowledged(producer, messages)


def _produce_acknowledged(
    producer: Producer, messages: list[tuple[str, str, bytes]]
) -> None:
    pending = len(messages)
    failures: list[KafkaError] = []
    done = threading.Event()
    lock = threading.Lock()

    def delivered(error: KafkaError | None, _message: Message) -> None:
        nonlocal pending
        with lock:
            if error is not None:
                failures.append(error)
            pending -= 1
            if pending == 0:
                done.set()

    try:
        for topic, key, value in messages:
            producer.produce(
                topic, key=key.encode(), value=value, on_delivery=delivered
            )
    except (KafkaException, BufferError) as error:
        raise _unavailable(str(error)) from None
    # Another request's flush may serve our callbacks; either way we wait on ours.
    producer.flush(ACK_TIMEOUT_S)
    if not done.wait(ACK_TIMEOUT_S) or failures:
        raise _unavailable(failures[0].str() if failures else "no acknowledgement")


def _unavailable(reason: str) -> ApiError:
    return ApiError(
        503, [("kafka", f"the message was not accepted by Kafka: {reason}")]
    )
