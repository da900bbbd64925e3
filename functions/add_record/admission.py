"""Who may hold a converter, and for how long.

A process has a few conversion slots (one ffmpeg each). Only an authenticated
upload asks for one. It waits its turn in a bounded queue, at most
CONVERSION_QUEUE_WAIT_S; a full queue or a long wait is a 503 with
Retry-After. One user holds at most MAX_CONVERSIONS_PER_USER slots; their
other uploads wait behind their own share, in a queue of their own, so a
burst from one user queues behind itself and never fills the queue others
wait in. Once converting, the upload must keep moving (`paced`): a read that waits
longer than UPLOAD_IDLE_TIMEOUT_S, or an average below MIN_UPLOAD_KIB_S after
the first UPLOAD_IDLE_TIMEOUT_S, frees the slot with a 408.

Before authentication nothing is held but a form's file that comes before its
credentials; all such prefixes together fit in UNAUTHENTICATED_HOLD_MB (`Held`),
past which the next is refused with 503 instead of growing the process.
"""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
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
        #: Uploads holding their user's share and waiting for a slot: at most a share per user.
        self.waiting = 0
        self._shares: dict[int, asyncio.Semaphore] = {}
        self._uploads_of = Counter[int]()  # holding or waiting for their user's share
        self._behind_own_share = Counter[int]()
        self.held = Held(settings.unauthenticated_hold_mb * 1024 * 1024)

    @asynccontextmanager
    async def slot(self, user_id: int) -> AsyncIterator[None]:
        """A conversion slot for `user_id`, once the user's share and a free slot allow.

        Two queues, both bounded by CONVERSION_QUEUE_LENGTH: the user's own, behind
        their share (429 past it), and the process's, which only uploads holding
        their user's share enter (503 past it). All waiting together lasts at most
        CONVERSION_QUEUE_WAIT_S (503).
        """
        share = self._shares.setdefault(user_id, asyncio.Semaphore(self.settings.max_conversions_per_user))
        self._uploads_of[user_id] += 1
        waiting_since = time.monotonic()
        try:
            try:
                async with asyncio.timeout(self.settings.conversion_queue_wait_s):
                    await self._take_share(share, user_id)
                    try:
                        await self._take_slot()
                    except BaseException:
                        share.release()
                        raise
            except TimeoutError:
                raise retry_later("Every converter is busy; try again shortly.") from None
            finally:
                QUEUE_WAIT.observe(time.monotonic() - waiting_since)
            CONVERSIONS_IN_FLIGHT.inc()
            converting_since = time.monotonic()
            try:
                yield
            finally:
                CONVERSION_SECONDS.observe(time.monotonic() - converting_since)
                CONVERSIONS_IN_FLIGHT.dec()
                self.slots.release()
                share.release()
        finally:
            self._uploads_of[user_id] -= 1
            if not self._uploads_of[user_id]:
                del self._uploads_of[user_id], self._shares[user_id]

    async def _take_share(self, share: asyncio.Semaphore, user_id: int) -> None:
        if not share.locked():
            await share.acquire()
            return
        if self._behind_own_share[user_id] >= self.settings.conversion_queue_length:
            raise retry_later(
                "Your earlier uploads fill your place in the queue; send this one once they are done.", 429
            )
        self._behind_own_share[user_id] += 1
        try:
            await share.acquire()
        finally:
            self._behind_own_share[user_id] -= 1
            if not self._behind_own_share[user_id]:
                del self._behind_own_share[user_id]

    async def _take_slot(self) -> None:
        if not self.slots.locked():
            await self.slots.acquire()
            return
        if self.waiting >= self.settings.conversion_queue_length:
            raise retry_later("Every converter is busy and the queue is full; try again shortly.")
        self.waiting += 1
        QUEUE_LENGTH.inc()
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
            QUEUE_LENGTH.dec()

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


class Held:
    """Bytes held for uploads whose sender is not yet known, within one budget for the process."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.total = 0

    @asynccontextmanager
    async def account(self) -> AsyncIterator[Callable[[int], None]]:
        """A function to call with each held piece's size; all of it is given back on leaving."""
        mine = 0

        def take(size: int) -> None:
            nonlocal mine
            if self.total + size > self.budget:
                raise retry_later("Too many uploads are waiting for their credentials; send them before the file.")
            self.total += size
            mine += size

        try:
            yield take
        finally:
            self.total -= mine


def stalled(why: str) -> Problem:
    return Problem(408, f"The upload was too slow: {why}. Send it again.")
