"""Requests that arrive together, answered together: register's inserts, list_records' pages.

Every database call leaves the event loop for a worker thread. On this kind of
machine the thread hand-off alone cost about 250 µs of CPU, a third of a
registration and more than a page's query (docs/performance.md). Requests that
arrive while a batch is in flight wait for the next one, which takes all of
them: one hand-off, one statement. Alone, a request goes at once.

A batch PostgreSQL refuses for one item's sake (a constraint, a value out of
range) is tried again one item at a time, so only that item fails. A batch that
fails because the database is out of reach fails at once, every item with it:
during an outage, attempts are not multiplied by the batch's size.
"""

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from common.db import is_unavailable

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Runs `write(items)`, a blocking call returning one result per item in order, on batches of submitted items.

    One batch is in flight at a time. A write PostgreSQL refused is tried again item by
    item; any other failure fails every submitter of its batch with the same exception.
    The next batch is tried afresh.
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
            if len(batch) > 1 and refused_for_an_item(exc):
                for each in batch:
                    await self._write_batch([each])
                return
            for _, future in batch:
                if not future.done():  # its request may have been cancelled meanwhile
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def refused_for_an_item(exc: Exception) -> bool:
    """Whether PostgreSQL refused the statement (something in it), rather than being out of reach."""
    return isinstance(exc, DBAPIError) and not is_unavailable(exc)
