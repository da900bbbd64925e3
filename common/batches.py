"""Requests that arrive together, answered together: register's inserts, list_records' pages.

Every database call leaves the event loop for a worker thread. On this kind of
machine the thread hand-off alone cost about 250 µs of CPU, a third of a
registration and more than a page's query (docs/performance.md). Requests that
arrive while a batch is in flight wait for the next one, which takes all of
them: one hand-off, one statement. Alone, a request goes at once.
"""

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Runs `write(items)`, a blocking call returning one result per item in order, on batches of submitted items.

    One batch is in flight at a time. A failed write fails every submitter of its batch
    with the same exception; the next batch is tried afresh.
    """

    def __init__(self, write: Callable[[list[Item]], Sequence[Result]], max_batch: int) -> None:
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._write_batch(batch)
        finally:
            self._writer = None
            # Items are left only if this task was cancelled: the loop is shutting down.
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await run_in_threadpool(self._write, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"write returned {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():  # its request may have been cancelled meanwhile
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
