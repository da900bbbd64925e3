"""Admission.paced: a sender is judged by its own pace, never by the time its bytes waited for ffmpeg."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from common.config import Settings
from common.problems import Problem
from functions.add_record.admission import Admission


def admission(settings: Settings) -> Admission:
    return Admission(settings.model_copy(update={"upload_idle_timeout_s": 0.2, "min_upload_kib_s": 64}))


async def chunks(count: int, every_s: float) -> AsyncIterator[bytes]:
    for _ in range(count):
        await asyncio.sleep(every_s)
        yield b"x" * 1024


async def consume(paced: AsyncIterator[bytes], busy_s: float) -> int:
    """Read all of `paced`, spending `busy_s` on each piece, as a write to a full pipe would."""
    received = 0
    async for chunk in paced:
        received += len(chunk)
        await asyncio.sleep(busy_s)
    return received


def test_a_sender_whose_bytes_wait_for_the_converter_is_not_too_slow(settings: Settings) -> None:
    """1 KiB ready at once, each held 0.05 s here: 20 KiB/s over the wall clock, but waiting on nobody."""
    paced = admission(settings).paced(chunks(10, every_s=0))
    assert asyncio.run(consume(paced, busy_s=0.05)) == 10 * 1024


def test_a_sender_under_the_minimum_pace_is_408(settings: Settings) -> None:
    """1 KiB every 0.05 s: 20 KiB/s of the sender's own, under 64."""
    paced = admission(settings).paced(chunks(10, every_s=0.05))
    with pytest.raises(Problem) as refused:
        asyncio.run(consume(paced, busy_s=0))
    assert refused.value.status_code == 408
