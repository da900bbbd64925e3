"""Who may hold a converter, and for how long.

A converting upload uses CPU only while its bytes arrive: over a 4 Mbit/s
link ffmpeg idles 99% of the time. So a process converts as many uploads at
once as its memory holds (MAX_CONCURRENT_CONVERSIONS, derived from its limit
in common.config), not as many as it has cores; past that, 503 with
Retry-After at once, before more of the body is read. The CPU they need is
shared by the kernel: ffmpeg runs niced (convert.py), and when the bytes
arriving outrun it, its full pipe stops this process reading the upload, and
TCP slows the sender.

One user converts at most MAX_CONVERSIONS_PER_USER at once; their other
uploads wait behind their own share, in a queue of their own
(CONVERSION_QUEUE_LENGTH, 429 past it; CONVERSION_QUEUE_WAIT_S, 503), holding
nothing but their connection. Once converting, the upload must keep moving
(`paced`): a read that waits longer than UPLOAD_IDLE_TIMEOUT_S, or a sender
slower than MIN_UPLOAD_KIB_S, frees the converter with a 408.

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

from .metrics import CONVERSION_CAPACITY, CONVERSION_SECONDS, CONVERSIONS_IN_FLIGHT, USER_QUEUE_WAIT


class Admission:
    """One process's converters, and each user's share of them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: Uploads converting now; at most settings.max_concurrent_conversions.
        self.converting = 0
        CONVERSION_CAPACITY.set(settings.max_concurrent_conversions)
        self._shares: dict[int, asyncio.Semaphore] = {}
        self._uploads_of = Counter[int]()  # holding or waiting for their user's share
        self._behind_own_share = Counter[int]()
        self.held = Held(settings.unauthenticated_hold_mb * 1024 * 1024)

    @asynccontextmanager
    async def slot(self, user_id: int) -> AsyncIterator[None]:
        """A converter for `user_id`, once the user's share allows and the process has room (503 at once if not)."""
        share = self._shares.setdefault(user_id, asyncio.Semaphore(self.settings.max_conversions_per_user))
        self._uploads_of[user_id] += 1
        try:
            await self._take_share(share, user_id)
            try:
                self._take_converter()
                CONVERSIONS_IN_FLIGHT.inc()
                converting_since = time.monotonic()
                try:
                    yield
                finally:
                    CONVERSION_SECONDS.observe(time.monotonic() - converting_since)
                    CONVERSIONS_IN_FLIGHT.dec()
                    self.converting -= 1
            finally:
                share.release()
        finally:
            self._uploads_of[user_id] -= 1
            if not self._uploads_of[user_id]:
                del self._uploads_of[user_id], self._shares[user_id]

    def _take_converter(self) -> None:
        if self.converting >= self.settings.max_concurrent_conversions:
            raise retry_later("Every converter is busy; try again shortly.")
        self.converting += 1

    async def _take_share(self, share: asyncio.Semaphore, user_id: int) -> None:
        if not share.locked():
            await share.acquire()
            return
        if self._behind_own_share[user_id] >= self.settings.conversion_queue_length:
            raise retry_later(
                "Your earlier uploads fill your place in the queue; send this one once they are done.", 429
            )
        self._behind_own_share[user_id] += 1
        waiting_since = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.conversion_queue_wait_s):
                await share.acquire()
        except TimeoutError:
            raise retry_later("Your earlier uploads are still converting; send this one once they are done.") from None
        finally:
            USER_QUEUE_WAIT.observe(time.monotonic() - waiting_since)
            self._behind_own_share[user_id] -= 1
            if not self._behind_own_share[user_id]:
                del self._behind_own_share[user_id]

    async def paced(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """`chunks` of the upload, as long as they keep coming; 408 when they stall or crawl.

        The pace counts only the time spent waiting for the sender: while
        ffmpeg is behind, the next chunk waits in buffers, and that wait is
        this process's, not the sender's.
        """
        idle_s = self.settings.upload_idle_timeout_s
        floor = self.settings.min_upload_kib_s * 1024
        waited = 0.0
        received = 0
        while True:
            asked = time.monotonic()
            try:
                async with asyncio.timeout(idle_s):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise stalled(f"no data arrived for {idle_s:g} s") from None
            waited += time.monotonic() - asked
            received += len(chunk)
            if waited > idle_s and received < floor * waited:
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
