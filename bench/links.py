"""Step 9: real links. Many people upload at once, each from an address of their own, each over an uplink of
a given speed, the service and the baseline in turn, in the same run.

Loopback hides what a slow link does: a transfer over 127.0.0.1 is instant, and
the kernel's socket buffers swallow megabytes of a waiting upload. Here each
client sends at its link's pace, so a converter held for a whole upload shows.
"""

import asyncio
import contextlib
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2
import psutil
import uvloop

from bench.contender import register_user
from bench.results import Results
from bench.steps import Bench
from bench.tools import make_wav
from devstack.background import ffmpeg_children

#: The clients' own addresses: 127.0.1.1, 127.0.1.2, ... (all of 127/8 is loopback).
ADDRESS_PREFIX = "127.0.1."
#: How often the memory of add_record and its ffmpegs is read during a crowd, and /register is asked.
MEMORY_EVERY_S = 5.0
COUNT_EVERY_S = 0.25
REGISTER_EVERY_S = 0.05


@dataclass
class Outcome:
    """One client's upload, as it saw it."""

    status: int
    total_s: float
    #: From the moment its last byte was written to the answer's status line.
    answer_after_last_byte_s: float


#: "At once": the crowd's uploads start one after another within this long, as people's
#: do (and as curl processes started one after another did), not within one millisecond.
ARRIVALS_S = 1.0
#: A link's pace is kept by sending this many pieces a second.
PIECES_PER_S = 8
#: Written at a time at loopback's own speed.
UNLIMITED_PIECE_BYTES = 256 * 1024


def bytes_per_s(rate: str) -> int:
    """curl's --limit-rate notation: 512K is 512 KiB/s, 2M is 2 MiB/s."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(float(rate[:-1]) * units[rate[-1]]) if rate[-1] in units else int(rate)


async def paced_upload(
    url: httpx2.URL, user: tuple[int, str], wav: bytes, address: str, rate: str | None, after_s: float
) -> Outcome:
    """A raw-body upload from `address`, written at `rate` as a link of that speed sends: when the
    receiver's window closes the link idles, and it never bursts to catch up afterwards.

    Not curl: its trace reports the upload complete while its rate limiter still holds
    the last buffer back (0.26-0.37 s at 128 KiB/s, against a server that only reads),
    so "after the last byte" would count curl's own wait.
    """
    await asyncio.sleep(after_s)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(url.host, url.port, local_addr=(address, 0))
    writer.write(
        f"POST {url.raw_path.decode()}?user_id={user[0]} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Authorization: Bearer {user[1]}\r\nContent-Type: audio/wav\r\nContent-Length: {len(wav)}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    answer = asyncio.ensure_future(reader.readline())
    piece = bytes_per_s(rate) // PIECES_PER_S if rate else UNLIMITED_PIECE_BYTES
    body = memoryview(wav)
    next_piece = time.monotonic()
    with contextlib.suppress(ConnectionError):  # refused and closed mid-body: the answer says why
        for offset in range(0, len(body), piece):
            if answer.done():  # answered before the end: a client stops sending
                break
            if rate:
                await asyncio.sleep(max(0.0, next_piece - time.monotonic()))
                next_piece = max(next_piece + 1 / PIECES_PER_S, time.monotonic())
            writer.write(body[offset : offset + piece])
            await writer.drain()
    last_byte = time.monotonic()
    status_line = await answer
    answered = time.monotonic()
    with contextlib.suppress(ConnectionError):
        await reader.read()  # the rest of the answer, up to the server's close
    writer.close()
    status = int(status_line.split()[1]) if status_line else 0
    return Outcome(status, round(answered - started, 3), round(max(0.0, answered - last_byte), 3))


def crowd_uploads(
    base_url: str, users: list[tuple[int, str]], wav: Path, rate: str | None, results: Results
) -> list[Outcome]:
    """Every user's upload at once, each from an address of its own; their outcomes, in the users' order."""
    data, url = wav.read_bytes(), httpx2.URL(f"{base_url}/record")
    results.note(["bench.links.paced_upload", f"{url}?user_id=$N", str(wav), f"{ADDRESS_PREFIX}$N", rate or "-"])

    async def everyone() -> list[Outcome]:
        return await asyncio.gather(
            *(
                paced_upload(url, user, data, f"{ADDRESS_PREFIX}{number}", rate, number / len(users) * ARRIVALS_S)
                for number, user in enumerate(users, start=1)
            )
        )

    # uvloop: a third of asyncio's CPU for the same sends, which share the cores with the service.
    return uvloop.run(everyone())


class Watch(threading.Thread):
    """While a crowd uploads: /register's latency, one request at a time, and add_record's memory."""

    def __init__(self, base_url: str, add_record: psutil.Process | None) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.add_record = add_record
        self.stop = threading.Event()
        self.register_ms: list[float] = []
        #: (converting uploads, add_record's private bytes, its ffmpegs' private bytes summed), a reading each.
        self.memory: list[tuple[int, int, int]] = []
        self.last_read = 0.0

    def run(self) -> None:
        next_reading, most = 0.0, 0
        with httpx2.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stop.wait(REGISTER_EVERY_S):
                started = time.perf_counter()
                response = client.post("/register", json={"name": "probe"})
                if response.status_code == 201:
                    self.register_ms.append((time.perf_counter() - started) * 1000)
                if self.add_record is None or time.monotonic() < next_reading:
                    continue
                # Counting is cheap, reading every ffmpeg's memory is not: read it when the crowd
                # is at its largest yet, and every MEMORY_EVERY_S.
                next_reading = time.monotonic() + COUNT_EVERY_S
                converting = len(ffmpeg_children(self.add_record))
                if converting > most or time.monotonic() - self.last_read >= MEMORY_EVERY_S:
                    most = max(most, converting)
                    self.last_read = time.monotonic()
                    self.memory.append(private_memory(self.add_record))


@contextmanager
def watching(base_url: str, add_record: psutil.Process | None) -> Iterator[Watch]:
    watch = Watch(base_url, add_record)
    watch.start()
    try:
        yield watch
    finally:
        watch.stop.set()
        watch.join(timeout=60)


def percentile(values: list[float], percent: int) -> float:
    """Nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * percent // 100) - 1)]


def summary(outcomes: list[Outcome], watch: Watch) -> dict[str, Any]:
    answered = [outcome.answer_after_last_byte_s for outcome in outcomes if outcome.status == 201]
    totals = [outcome.total_s for outcome in outcomes if outcome.status == 201]
    return {
        "statuses": dict(Counter(str(outcome.status) for outcome in outcomes)),
        "created": sum(outcome.status == 201 for outcome in outcomes),
        "answer_after_last_byte_median_s": round(statistics.median(answered), 3) if answered else None,
        "answer_after_last_byte_p99_s": round(percentile(answered, 99), 3) if answered else None,
        "total_median_s": round(statistics.median(totals), 2) if totals else None,
        "total_max_s": round(max(totals), 2) if totals else None,
        "register_p99_ms": round(percentile(watch.register_ms, 99), 1) if watch.register_ms else None,
        "register_requests": len(watch.register_ms),
        "outcomes": [asdict(outcome) for outcome in outcomes],
    }


def private_memory(add_record: psutil.Process) -> tuple[int, int, int]:
    """(converting uploads, add_record's private bytes, its ffmpegs' private bytes summed).

    Private (USS): what would be freed were the process gone. The pages every
    ffmpeg shares (its libraries) are the page cache's, paid once however many run.
    """
    ffmpegs = ffmpeg_children(add_record)
    private = 0
    for ffmpeg in ffmpegs:
        with contextlib.suppress(psutil.NoSuchProcess):
            private += int(ffmpeg.memory_full_info().uss)
    return len(ffmpegs), int(add_record.memory_full_info().uss), private


def upload_memory_mb(idle: int, readings: list[tuple[int, int, int]]) -> dict[str, Any]:
    """What each converting upload costs at the most crowded reading: add_record's growth over its idle
    shared among them, and an ffmpeg's private memory."""
    if not readings:
        return {}
    converting, function, ffmpegs = max(readings)
    share = (function - idle) / max(converting, 1)
    ffmpeg = ffmpegs / max(converting, 1)
    return {
        "converting": converting,
        "add_record_idle_mb": round(idle / 2**20, 1),
        "add_record_mb": round(function / 2**20, 1),
        "function_share_mb": round(share / 2**20, 2),
        "ffmpeg_private_mb": round(ffmpeg / 2**20, 2),
        "per_upload_mb": round((share + ffmpeg) / 2**20, 2),
    }


def real_links(bench: Bench) -> None:
    """Each crowd of the plan on the service (through its gateway), then on the baseline."""
    service, baseline, results = bench.stack.base_url, bench.baseline, bench.results
    add_record = bench.stack.function_processes()["add_record"]
    for crowd in bench.plan.crowds:
        wav = make_wav(bench.work / f"{crowd.wav_seconds}s.wav", crowd.wav_seconds, results)
        users = [register_user(service) for _ in range(crowd.users)]
        idle = int(add_record.memory_full_info().uss)
        with watching(service, add_record) as watch:
            ours = crowd_uploads(service, users, wav, crowd.rate, results)
        measured = summary(ours, watch) | {"memory": upload_memory_mb(idle, watch.memory)}
        with watching(baseline.base_url, None) as plain_watch:
            plain_users = [baseline.user] * crowd.users
            theirs = crowd_uploads(baseline.base_url, plain_users, wav, crowd.rate, results)
        results.real_links.append(
            {
                **asdict(crowd),
                "wav_mb": round(wav.stat().st_size / 2**20, 1),
                "service": measured,
                "baseline": summary(theirs, plain_watch),
            }
        )
