"""add_record's converters under many slow uploads, served alone by uvicorn: bounded by memory, shared fairly."""

import threading
import time
from collections.abc import Iterator

import psutil
import pytest
from sqlalchemy import Engine

from common.config import ADD_RECORD_BASE_MB, UPLOAD_MEMORY_MB
from devstack.background import ffmpeg_children, proportional_memory
from devstack.seed import create_user
from tests.support.audio import Wav
from tests.support.stacks import Function, serve_function, wait_for
from tests.support.uploads import RawUpload, assert_retry_later

BOUND = 4
#: The memory limit that MAX_CONCURRENT_CONVERSIONS=BOUND derives from (common.config.conversions_fitting).
LIMIT_MB = ADD_RECORD_BASE_MB + BOUND * UPLOAD_MEMORY_MB
HEAD_BYTES = 65_536


def ffmpeg_of(function: Function) -> list[psutil.Process]:
    return ffmpeg_children(psutil.Process(function.process.pid))


def send_slowly(upload: RawUpload, data: bytes, piece: int = 32_768, every_s: float = 0.1) -> threading.Thread:
    """`data` at `piece` bytes per `every_s` (320 KiB/s by default), from a thread of its own."""

    def run() -> None:
        for start in range(0, len(data), piece):
            upload.send(data[start : start + piece])
            time.sleep(every_s)

    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    return sender


@pytest.fixture(scope="module")
def add_record(database_url: str) -> Iterator[Function]:
    with serve_function("add_record", MAX_CONCURRENT_CONVERSIONS=str(BOUND)) as function:
        yield function


def test_twice_the_bound_of_slow_uploads_the_excess_503_at_once_the_rest_complete_within_memory(
    add_record: Function, engine: Engine
) -> None:
    wav = Wav(duration_s=5).to_bytes()
    uploads = []
    for number in range(2 * BOUND):
        upload = RawUpload(add_record, create_user(engine, f"slow {number}"), wav)
        upload.send(wav[:HEAD_BYTES])
        uploads.append(upload)
    # The excess is answered while every upload is still sending its body.
    assert wait_for(lambda: sum(upload.answered(within_s=0) for upload in uploads) == BOUND)
    refused = [upload for upload in uploads if upload.answered(within_s=0)]
    for upload in refused:
        assert_retry_later(*upload.response())
    admitted = [upload for upload in uploads if upload not in refused]
    assert len(ffmpeg_of(add_record)) == BOUND
    senders = [send_slowly(upload, wav[HEAD_BYTES:]) for upload in admitted]
    process = psutil.Process(add_record.process.pid)
    peak = 0
    while any(sender.is_alive() for sender in senders):
        peak = max(peak, proportional_memory(process))
        time.sleep(0.1)
    assert [upload.response()[0] for upload in admitted] == [201] * BOUND
    assert peak < LIMIT_MB * 2**20, f"{peak / 2**20:.0f} MB in use, over the {LIMIT_MB} MB the bound derives from"


@pytest.fixture(scope="module")
def one_each(database_url: str) -> Iterator[Function]:
    """Two converters, one per user, and two of a user's uploads may wait behind it for 3 s."""
    with serve_function(
        "add_record",
        MAX_CONCURRENT_CONVERSIONS="2",
        MAX_CONVERSIONS_PER_USER="1",
        CONVERSION_QUEUE_LENGTH="2",
        CONVERSION_QUEUE_WAIT_S="3",
    ) as function:
        yield function


def test_one_users_waiting_uploads_never_take_a_converter_from_another(one_each: Function, engine: Engine) -> None:
    greedy, other = create_user(engine, "greedy"), create_user(engine, "other")
    wav = Wav(duration_s=0.5).to_bytes()
    converting = RawUpload(one_each, greedy, wav)
    converting.send(wav[:HEAD_BYTES])
    assert wait_for(lambda: len(ffmpeg_of(one_each)) == 1)
    behind = [RawUpload(one_each, greedy, wav) for _ in range(4)]
    for upload in behind:
        upload.send(wav[:HEAD_BYTES])
    # Two wait behind the user's own converting upload; two are refused at once.
    assert wait_for(lambda: sum(upload.answered(within_s=0) for upload in behind) == 2)
    assert len(ffmpeg_of(one_each)) == 1
    stranger = RawUpload(one_each, other, wav)
    stranger.send(wav)
    assert stranger.response()[0] == 201
    for upload in [converting, *behind]:
        upload.send_in_background(wav[HEAD_BYTES:])
    statuses = sorted(upload.response()[0] for upload in [converting, *behind])
    assert statuses == [201, 201, 201, 429, 429]


def test_a_long_wait_behind_ones_own_upload_is_503(one_each: Function, engine: Engine) -> None:
    user = create_user(engine, "patient")
    wav = Wav(duration_s=0.5).to_bytes()
    converting = RawUpload(one_each, user, wav)
    converting.send(wav[:HEAD_BYTES])
    assert wait_for(lambda: len(ffmpeg_of(one_each)) == 1)
    waiting = RawUpload(one_each, user, wav)
    waiting.send(wav[:HEAD_BYTES])
    assert_retry_later(*waiting.response())
    converting.send(wav[HEAD_BYTES:])
    assert converting.response()[0] == 201
