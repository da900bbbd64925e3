"""add_record under faults, served alone by uvicorn: ffmpeg killed or hung, a client gone quiet.

Each ends in 503 with Retry-After (or 408 for the client), no ffmpeg left running and no record stored.
"""

import os
import signal
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from devstack.background import ffmpeg_children
from tests.support.audio import Wav
from tests.support.stacks import Function, serve_function, wait_for
from tests.support.uploads import RawUpload, assert_retry_later

TIMEOUT_S = 2


@pytest.fixture(scope="module")
def add_record(database_url: str) -> Iterator[Function]:
    with serve_function("add_record", CONVERSION_TIMEOUT_S=str(TIMEOUT_S), UPLOAD_IDLE_TIMEOUT_S="3") as function:
        yield function


def ffmpeg_of(function: Function) -> list[psutil.Process]:
    return ffmpeg_children(psutil.Process(function.process.pid))


@pytest.mark.usefixtures("nothing_stored")
def test_ffmpeg_killed_mid_conversion(add_record: Function, uploader: tuple[int, str]) -> None:
    wav = Wav(duration_s=30).to_bytes()
    upload = RawUpload(add_record, uploader, wav)
    upload.send(wav[: len(wav) // 3])
    assert wait_for(lambda: ffmpeg_of(add_record)), "ffmpeg never started"
    for ffmpeg in ffmpeg_of(add_record):
        os.kill(ffmpeg.pid, signal.SIGKILL)
    upload.send_in_background(wav[len(wav) // 3 :])
    assert_retry_later(*upload.response())
    assert wait_for(lambda: not ffmpeg_of(add_record))


@pytest.mark.usefixtures("nothing_stored")
def test_hanging_ffmpeg_is_killed_at_the_timeout(add_record: Function, uploader: tuple[int, str]) -> None:
    wav = Wav(duration_s=30).to_bytes()
    upload = RawUpload(add_record, uploader, wav)
    upload.send(wav[:100_000])
    assert wait_for(lambda: ffmpeg_of(add_record)), "ffmpeg never started"
    (ffmpeg,) = ffmpeg_of(add_record)
    ffmpeg.suspend()  # SIGSTOP: alive, reading nothing
    upload.send_in_background(wav[100_000:])
    assert_retry_later(*upload.response())
    assert wait_for(lambda: not psutil.pid_exists(ffmpeg.pid) or ffmpeg.status() == psutil.STATUS_ZOMBIE)
    assert wait_for(lambda: not ffmpeg_of(add_record))


@pytest.mark.usefixtures("nothing_stored")
def test_client_gone_quiet_is_cut_off_at_the_idle_timeout(add_record: Function, uploader: tuple[int, str]) -> None:
    wav = Wav(duration_s=30).to_bytes()
    upload = RawUpload(add_record, uploader, wav)
    upload.send(wav[:100_000])  # then nothing more, for longer than UPLOAD_IDLE_TIMEOUT_S
    assert upload.response()[0] == 408
    assert wait_for(lambda: not ffmpeg_of(add_record))


def test_a_slow_honest_upload_outlasts_the_conversion_timeout(add_record: Function, uploader: tuple[int, str]) -> None:
    """About 4 s of sending, twice CONVERSION_TIMEOUT_S: it bounds ffmpeg, not the sender's pace."""
    wav = Wav(duration_s=3).to_bytes()
    upload = RawUpload(add_record, uploader, wav)
    for start in range(0, len(wav), 16_384):
        upload.send(wav[start : start + 16_384])
        time.sleep(0.125)  # 128 KiB/s: a 1 Mbit/s uplink
    assert upload.response()[0] == 201


@pytest.fixture(scope="module")
def one_converter(database_url: str) -> Iterator[Function]:
    """add_record with one converter and a short idle limit."""
    with serve_function("add_record", MAX_CONCURRENT_CONVERSIONS="1", UPLOAD_IDLE_TIMEOUT_S="1") as function:
        yield function


def stored_whole(function: Function, user: tuple[int, str]) -> bool:
    wav = Wav(duration_s=0.2).to_bytes()
    upload = RawUpload(function, user, wav)
    upload.send(wav)
    return upload.response()[0] == 201


def test_a_stalled_upload_frees_its_converter(one_converter: Function, uploader: tuple[int, str]) -> None:
    wav = Wav(duration_s=30).to_bytes()
    upload = RawUpload(one_converter, uploader, wav)
    upload.send(wav[:100_000])  # then nothing
    assert wait_for(lambda: ffmpeg_of(one_converter)), "ffmpeg never started"
    assert upload.response()[0] == 408
    assert wait_for(lambda: not ffmpeg_of(one_converter))
    assert stored_whole(one_converter, uploader)


def test_a_trickle_frees_its_converter(one_converter: Function, uploader: tuple[int, str]) -> None:
    """2 bytes every half second: never idle for the limit, far under the minimum rate."""
    wav = Wav(duration_s=30).to_bytes()
    upload = RawUpload(one_converter, uploader, wav)
    upload.send(wav[:10_000])
    stop = threading.Event()

    def trickle() -> None:
        for offset in range(10_000, len(wav), 2):
            if stop.wait(0.5):
                return
            upload.send(wav[offset : offset + 2])

    threading.Thread(target=trickle, daemon=True).start()
    try:
        assert upload.response()[0] == 408
    finally:
        stop.set()
    assert stored_whole(one_converter, uploader)


def test_an_anonymous_form_holds_no_converter(one_converter: Function, uploader: tuple[int, str]) -> None:
    """The file first, credentials promised after it, sent at a trickle: a real upload still gets through."""
    wav = Wav(duration_s=30).to_bytes()
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    form = head + wav + b"\r\n--b--\r\n"
    anonymous = RawUpload(one_converter, (uploader[0], "not-a-token"), form, "multipart/form-data; boundary=b")
    anonymous.send(form[:50_000])
    assert not ffmpeg_of(one_converter)
    assert stored_whole(one_converter, uploader)
    anonymous.connection.close()


def test_what_follows_the_file_holds_no_converter(one_converter: Function, uploader: tuple[int, str]) -> None:
    """The file ends, then another field drips a byte at a time: ffmpeg is done at once, the dawdler gets 408."""
    credentials = f'--b\r\nContent-Disposition: form-data; name="user_id"\r\n\r\n{uploader[0]}\r\n'.encode()
    file_part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    form = credentials + file_part + Wav(duration_s=3).to_bytes() + b"\r\n"
    tail = b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\n' + b"x" * 200 + b"\r\n--b--\r\n"
    dawdler = RawUpload(one_converter, uploader, form + tail, "multipart/form-data; boundary=b")
    dawdler.send(form[:-100_000])
    assert wait_for(lambda: ffmpeg_of(one_converter)), "ffmpeg never started"
    dawdler.send(form[-100_000:])
    stop = threading.Event()

    def drip() -> None:
        for offset in range(len(tail)):
            if stop.wait(0.3):
                return
            dawdler.send(tail[offset : offset + 1])

    threading.Thread(target=drip, daemon=True).start()
    try:
        assert wait_for(lambda: not ffmpeg_of(one_converter), timeout_s=5), "the converter waits for the form's end"
        assert dawdler.response()[0] == 408
    finally:
        stop.set()
    assert stored_whole(one_converter, uploader)


HOLD_MB = 4


@pytest.mark.usefixtures("nothing_stored")
def test_anonymous_prefixes_share_one_budget(database_url: str) -> None:
    """Sixty forms, each with 900 kB of file before credentials that never come: 4 MB held, the rest 503."""
    prefix = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    prefix += Wav(duration_s=5).to_bytes()[:900_000]
    with serve_function("add_record", UNAUTHENTICATED_HOLD_MB=str(HOLD_MB), UPLOAD_IDLE_TIMEOUT_S="10") as function:
        process = psutil.Process(function.process.pid)
        before = process.memory_info().rss
        uploads = [
            RawUpload(function, None, prefix + b"\r\n--b--\r\n", "multipart/form-data; boundary=b") for _ in range(60)
        ]
        for upload in uploads:
            upload.send(prefix)  # held whole (it is under 1 MiB), or refused: either way over when this returns
        growth = process.memory_info().rss - before  # well before UPLOAD_IDLE_TIMEOUT_S frees what is held
        statuses = [upload.response()[0] for upload in uploads]
    assert growth < (HOLD_MB + 30) * 1024 * 1024, f"add_record grew by {growth / 2**20:.0f} MiB"
    assert statuses.count(503) >= 50, statuses
    assert set(statuses) <= {503, 408}
