"""The Batcher: concurrent submissions share one write, each gets its own result, or its own error."""

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from common.batches import Batcher


class Recorder:
    """A blocking write that doubles its items, remembers its batches, and can be held or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()
        self.fail_next = False

    def write(self, items: list[int]) -> list[int]:
        self.release.wait(timeout=10)
        self.batches.append(items)
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the database went away")
        return [item * 2 for item in items]


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def test_a_lone_submission_is_written_at_once() -> None:
    recorder = Recorder()

    async def scenario() -> int:
        return await Batcher(recorder.write, max_batch=8).submit(21)

    assert run(scenario()) == 42
    assert recorder.batches == [[21]]


def test_submissions_during_a_write_share_the_next_one_in_order() -> None:
    recorder = Recorder()
    recorder.release.clear()  # hold the first write until the rest have queued behind it

    async def scenario() -> list[int]:
        batcher = Batcher(recorder.write, max_batch=8)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0)  # the first write starts
        rest = [asyncio.create_task(batcher.submit(item)) for item in range(1, 6)]
        await asyncio.sleep(0)
        recorder.release.set()
        return await asyncio.gather(first, *rest)

    assert run(scenario()) == [0, 2, 4, 6, 8, 10]
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]


def test_batches_never_exceed_their_maximum() -> None:
    recorder = Recorder()
    recorder.release.clear()

    async def scenario() -> list[int]:
        batcher = Batcher(recorder.write, max_batch=3)
        tasks = [asyncio.create_task(batcher.submit(item)) for item in range(8)]
        await asyncio.sleep(0)
        recorder.release.set()
        return await asyncio.gather(*tasks)

    assert run(scenario()) == [item * 2 for item in range(8)]
    assert recorder.batches == [[0, 1, 2], [3, 4, 5], [6, 7]]


def test_a_failed_write_fails_its_whole_batch_and_the_next_batch_is_tried_afresh() -> None:
    recorder = Recorder()
    recorder.release.clear()
    recorder.fail_next = True

    async def scenario() -> list[object]:
        batcher = Batcher(recorder.write, max_batch=2)
        tasks = [asyncio.create_task(batcher.submit(item)) for item in range(3)]
        await asyncio.sleep(0)
        recorder.release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, second, third = run(scenario())
    assert isinstance(first, ConnectionError)
    assert first is second
    assert third == 4
    assert recorder.batches == [[0, 1], [2]]


def test_a_write_returning_the_wrong_number_of_results_fails_its_batch() -> None:
    def write_nothing(items: list[int]) -> list[int]:
        return []

    async def scenario() -> None:
        await Batcher(write_nothing, max_batch=4).submit(1)

    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        run(scenario())


def test_a_cancelled_submitter_does_not_disturb_the_others() -> None:
    recorder = Recorder()
    recorder.release.clear()

    async def scenario() -> list[int]:
        batcher = Batcher(recorder.write, max_batch=8)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0)
        leaving, staying = asyncio.create_task(batcher.submit(1)), asyncio.create_task(batcher.submit(2))
        await asyncio.sleep(0)
        leaving.cancel()
        recorder.release.set()
        return list(await asyncio.gather(first, staying))

    assert run(scenario()) == [0, 4]
    assert recorder.batches == [[0], [1, 2]]  # the row is still written; only its answer has no taker


class Inserts:
    """A write that inserts its items as one statement into a table whose CHECK refuses negatives."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.attempts = 0

    def write(self, items: list[int]) -> list[int]:
        self.attempts += 1
        with self.engine.begin() as connection:
            rows = connection.execute(
                text("INSERT INTO batch_items (value) SELECT unnest(CAST(:values AS int[])) RETURNING value"),
                {"values": items},
            )
            return [value for (value,) in rows]


@pytest.fixture
def inserts(engine: Engine) -> Iterator[Inserts]:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE batch_items (value int CHECK (value >= 0))"))
    try:
        yield Inserts(engine)
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE batch_items"))


def test_an_item_postgresql_refuses_fails_alone(inserts: Inserts, engine: Engine) -> None:
    """One batch of four, one of them against the table's CHECK: the three others are stored."""
    batcher = Batcher(inserts.write, max_batch=8)

    async def scenario() -> list[object]:
        return await asyncio.gather(*(batcher.submit(value) for value in (1, 2, -3, 4)), return_exceptions=True)

    outcomes = run(scenario())
    assert outcomes[:2] == [1, 2]
    assert isinstance(outcomes[2], IntegrityError)
    assert outcomes[3] == 4
    with engine.connect() as connection:
        assert sorted(connection.execute(text("SELECT value FROM batch_items")).scalars()) == [1, 2, 4]


def test_a_database_out_of_reach_fails_the_batch_at_once() -> None:
    """An outage is not tried item by item: one attempt, every item its error."""
    attempts = []

    def unreachable(items: list[int]) -> list[int]:
        attempts.append(items)
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    batcher = Batcher(unreachable, max_batch=8)

    async def scenario() -> list[object]:
        return await asyncio.gather(*(batcher.submit(value) for value in range(4)), return_exceptions=True)

    outcomes = run(scenario())
    assert all(isinstance(outcome, OperationalError) for outcome in outcomes)
    assert len(attempts) == 1
