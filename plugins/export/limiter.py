"""The concurrency limiter: ``max_concurrent`` slots, a FIFO queue of ``max_queue``, then 429.

Each running export holds a numbered slot (0..max_concurrent-1), which is also the render worker it uses.
Queued exports get slots strictly in arrival order. ``Retry-After`` is estimated from recent durations.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field


class QueueFull(Exception):
    """Every slot is busy and the queue is full."""

    def __init__(self, retry_after: int, queue_depth: int) -> None:
        super().__init__(f"export queue is full ({queue_depth} waiting); retry in {retry_after} s")
        self.retry_after = retry_after
        self.queue_depth = queue_depth


@dataclass(eq=False)
class Ticket:
    """One export's place: waiting (``slot is None``) or holding ``slot``."""

    granted: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    slot: int | None = None
    released: bool = False


class ExportLimiter:
    def __init__(self, max_concurrent: int, max_queue: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._free = list(range(max_concurrent - 1, -1, -1))
        self._waiting: deque[Ticket] = deque()
        self._durations: deque[float] = deque(maxlen=20)
        self.closed = False

    @property
    def running(self) -> int:
        return self.max_concurrent - len(self._free)

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def retry_after(self) -> int:
        """Seconds until a slot is likely free for a newcomer: queue ahead × mean duration / slots."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return max(1, math.ceil(mean * (self.queued + 1) / self.max_concurrent))

    def enter(self, force: bool = False) -> Ticket:
        """A ticket holding a slot now, or waiting in the queue; :class:`QueueFull` when neither fits.

        ``force`` queues past ``max_queue``: for jobs already accepted before a restart.
        """
        ticket = Ticket()
        if self._free and not self._waiting:
            ticket.slot = self._free.pop()
            ticket.granted.set_result(ticket.slot)
        elif force or len(self._waiting) < self.max_queue:
            self._waiting.append(ticket)
        else:
            raise QueueFull(self.retry_after(), self.queued)
        return ticket

    async def wait(self, ticket: Ticket) -> int:
        """Wait for ``ticket``'s slot; cancelling the wait gives the place (or the slot) back."""
        try:
            return await asyncio.shield(ticket.granted)
        except asyncio.CancelledError:
            self.leave(ticket)
            raise

    def leave(self, ticket: Ticket, duration: float | None = None) -> None:
        """Give back ``ticket``'s slot (or its place in the queue); the next waiter gets the slot. Idempotent."""
        if ticket.released:
            return
        ticket.released = True
        if not ticket.granted.done():
            self._waiting.remove(ticket)
            ticket.granted.cancel()
            return
        slot = ticket.granted.result()
        if duration is not None:
            self._durations.append(duration)
        while self._waiting and not self.closed:
            nxt = self._waiting.popleft()
            nxt.slot = slot
            nxt.granted.set_result(slot)
            return
        self._free.append(slot)
