"""Who may hold a converter, and for how long.

A process has a few conversion slots (one ffmpeg each). Only an authenticated
upload asks for one. It waits its turn in a bounded queue, at most
CONVERSION_QUEUE_WAIT_S; a full queue or a long wait is a 503 with
Retry-After. One user holds at most MAX_CONVERSIONS_PER_USER slots, so a
burst from one user queues behind itself instead of shutting others out.
Once converting, the upload must keep moving (`paced`): a read that waits
longer than UPLOAD_IDLE_TIMEOUT_S, or an average below MIN_UPLOAD_KIB_S after
the first UPLOAD_IDLE_TIMEOUT_S, frees the slot with a 408.
"""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.config import Settings
from common.problems import Problem, retry_later

from .metrics import (
    CONVERSION_SECONDS,
    CONVERSIONS_IN_FLIGHT,
    QUEUE_CAPACITY,
    QUEUE_LENGTH,
    QUEUE_WAIT,
)


class Admission:
    """One process's conversion slots, its queue for them, and each user's share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slots = asyncio.Semaphore(settings.max_concurrent_conversions)
        QUEUE_CAPACITY.set(settings.conversion_queue_length)
        self.waiting = 0
        self._per_user: dict[int, asyncio.Semaphore] = {}
        self._users = Counter[int]()  # uploads holding or waiting for a user's semaphore

    @asynccontextmanager
    async def slot(self, user_id: int) -> AsyncIterator[None]:
        """A conversion slot for `user_id`, once one and the user's share allow; 503 past the queue."""
        mine = self._per_user.setdefault(user_id, asyncio.Semaphore(self.settings.max_conversions_per_user))
        must_wait = mine.locked() or self.slots.locked()
        if must_wait and self.waiting >= self.settings.conversion_queue_length:
            if not self._users[user_id]:
                del self._per_user[user_id]
            raise retry_later("Every converter is busy and the queue is full; try again shortly.")
        self._users[user_id] += 1
        self.waiting += 1
        QUEUE_LENGTH.inc()
        waiting_since = time.monotonic()
        try:
            try:
                async with asyncio.timeout(self.settings.conversion_queue_wait_s):
                    await mine.acquire()
                    try:
                        await self.slots.acquire()
                    except BaseException:
                        mine.release()
                        raise
            except TimeoutError:
                raise retry_later("Every converter is busy; try again shortly.") from None
            finally:
                self.waiting -= 1
                QUEUE_LENGTH.dec()
                QUEUE_WAIT.observe(time.monotonic() - waiting_since)
            CONVERSIONS_IN_FLIGHT.inc()
            converting_since = time.monotonic()
            try:
                yield
            finally:
                CONVERSION_SECONDS.observe(time.monotonic() - converting_since)
                CONVERSIONS_IN_FLIGHT.dec()
                self.slots.release()
                mine.release()
        finally:
            self._users[user_id] -= 1
            if not self._users[user_id]:
                del self._users[user_id], self._per_user[user_id]

    async def paced(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """`chunks` of the upload, as long as they keep coming; 408 when they stall or crawl."""
        idle_s = self.settings.upload_idle_timeout_s
        floor = self.settings.min_upload_kib_s * 1024
        started = time.monotonic()
        received = 0
        while True:
            try:
                async with asyncio.timeout(idle_s):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise stalled(f"no data arrived for {idle_s:g} s") from None
            received += len(chunk)
            elapsed = time.monotonic() - started
            if elapsed > idle_s and received < floor * elapsed:
                raise stalled(f"it arrived at under {self.settings.min_upload_kib_s:g} KiB/s")
            yield chunk


def stalled(why: str) -> Problem:
    return Problem(408, f"The upload was too slow to keep a converter: {why}. Send it again.")
