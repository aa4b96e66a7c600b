"""Bounds on what a deliverer holds: per process, per channel, and per attempt.

:class:`InFlightLimits` bounds the messages a process holds, in flight (from
the moment one is handed to the pipeline until its outcome is durable) or
waiting in memory to start, and gives each channel a share of the messages in
flight, so an endpoint that hangs until its deadline holds its share and no
more. It also measures how fast each channel's share turns over, which tells
how many of its commands may wait in memory (:meth:`InFlightLimits.may_wait`).
:class:`KeyedLimiter` bounds the attempts one channel runs at once; messages
beyond it wait inside their share.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

# How far back a channel's pace is measured, and so about the longest one of
# its commands is expected to wait in memory for its share. A fast endpoint
# takes even a large backlog within it (at 100 deliveries a second, 500
# commands); an endpoint that hangs until its deadline takes almost nothing.
PACE_WINDOW_S = 5.0


@dataclass
class _Channel:
    """A channel recently busy: how many messages held, how long saturated."""

    in_flight: int = 0
    waiting: int = 0
    # When the channel became saturated (share full, or commands waiting for
    # it), None if it never was. A share that drains for less than a window,
    # as a hanging endpoint's does when its attempts time out together, stays
    # saturated, so its measured pace holds across the dip.
    since: float | None = None
    # When it last stopped being saturated, None while it is.
    calm_since: float | None = None
    released_at: deque[float] = field(default_factory=deque)

    def idle(self) -> bool:
        """Whether it holds no message."""
        return not self.in_flight and not self.waiting


class InFlightLimits:
    """At most ``total`` messages held, ``per_channel`` of one channel in flight.

    Held means in flight (taken) or waiting in a consumer's memory to be taken
    or deferred; a channel's share counts its messages in flight. Shared by
    every consumer of a process and used from its event loop only, so it needs
    no lock. A message without a channel (one that will not be sent, or a
    deferral) counts against the total only.
    """

    def __init__(
        self,
        total: int,
        per_channel: int,
        window_s: float = PACE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Hold at most ``total`` messages, ``per_channel`` of any one channel.

        A channel's pace is measured over the last ``window_s`` of ``clock``.
        """
        self.total = total
        self.per_channel = per_channel
        self._window_s = window_s
        self._clock = clock
        self._in_flight = 0
        self._waiting = 0
        # Channels with messages held or released within the last window, so
        # this stays small however many channels a process serves; an idle
        # channel is kept that long to remember its pace.
        self._channels: dict[str, _Channel] = {}
        self._next_sweep = clock() + window_s

    def full(self) -> bool:
        """Whether the process holds all it may: consume nothing more for now."""
        return self._in_flight + self._waiting >= self.total

    def admits(self, channel: str | None) -> bool:
        """Whether a message of ``channel`` can be taken now."""
        if self._in_flight >= self.total:
            return False
        state = None if channel is None else self._channels.get(channel)
        return state is None or state.in_flight < self.per_channel

    def may_wait(self, channel: str | None) -> int | None:
        """How many commands may wait in memory for ``channel``'s full share.

        As many as its share took in over the last window while saturated:
        those are expected to start within about a window, the rest are better
        deferred. None (no limit) until the channel has been saturated for a
        whole window, since its pace is not known before; a message without a
        channel never waits for a share.
        """
        state = None if channel is None else self._channels.get(channel)
        if state is None or state.since is None or state.calm_since is not None:
            return None
        now = self._clock()
        if now - state.since < self._window_s:
            return None
        self._forget_before(state, now - self._window_s)
        return len(state.released_at)

    def take(self, channel: str | None) -> None:
        """Count a message of ``channel`` as in flight (after :meth:`admits`)."""
        self._in_flight += 1
        if channel is not None:
            state = self._channels.setdefault(channel, _Channel())
            state.in_flight += 1
            self._update(state)

    def release(self, channel: str | None) -> None:
        """A message of ``channel`` is done: its outcome is durable, or it failed."""
        self._in_flight -= 1
        if channel is None:
            return
        state = self._channels[channel]
        state.in_flight -= 1
        now = self._clock()
        state.released_at.append(now)
        self._forget_before(state, now - self._window_s)
        self._update(state)

    def add_waiting(self, channel: str | None) -> None:
        """A consumed message of ``channel`` waits in memory to start."""
        self._waiting += 1
        if channel is not None:
            state = self._channels.setdefault(channel, _Channel())
            state.waiting += 1
            self._update(state)

    def remove_waiting(self, channel: str | None) -> None:
        """A waiting message of ``channel`` started, or was dropped."""
        self._waiting -= 1
        if channel is not None:
            state = self._channels[channel]
            state.waiting -= 1
            self._update(state)

    def _update(self, state: _Channel) -> None:
        now = self._clock()
        if state.waiting or state.in_flight >= self.per_channel:
            calm_too_long = (
                state.calm_since is not None
                and now - state.calm_since >= self._window_s
            )
            if state.since is None or calm_too_long:
                state.since = now
            state.calm_since = None
        elif state.calm_since is None:
            state.calm_since = now
        self._sweep(now)

    def _sweep(self, now: float) -> None:
        # At most once a window: forget channels idle for a whole window.
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._window_s
        cutoff = now - self._window_s
        for channel in [
            name
            for name, state in self._channels.items()
            if state.idle()
            and state.calm_since is not None
            and state.calm_since < cutoff
        ]:
            del self._channels[channel]

    @staticmethod
    def _forget_before(state: _Channel, cutoff: float) -> None:
        released_at = state.released_at
        while released_at and released_at[0] < cutoff:
            released_at.popleft()


class KeyedLimiter:
    """At most ``limit`` holders per key; a key's state is dropped when unused."""

    def __init__(self, limit: int) -> None:
        """Allow ``limit`` concurrent holders per key."""
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Wait for a slot of ``key`` and hold it for the block."""
        semaphore, users = self._slots.setdefault(
            key, (asyncio.Semaphore(self._limit), [0])
        )
        users[0] += 1
        try:
            async with semaphore:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._slots[key]
