"""Step 9: real links. Many people upload at once, each from an address of their own, each over an uplink of
a given speed (curl's --limit-rate), the service and the baseline in turn, in the same run.

Loopback hides what a slow link does: a transfer over 127.0.0.1 is instant, and
the kernel's socket buffers swallow megabytes of a waiting upload. Here each
client sends at its link's pace, so a converter held for a whole upload shows.
"""

import contextlib
import statistics
import subprocess
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

from bench.contender import register_user
from bench.results import Results
from bench.steps import Bench
from bench.tools import clock_s, make_wav
from devstack.background import ffmpeg_children

#: The clients' own addresses: 127.0.1.1, 127.0.1.2, ... (all of 127/8 is loopback).
ADDRESS_PREFIX = "127.0.1."
#: How often the memory of add_record and its ffmpegs is read during a crowd, and /register is asked.
MEMORY_EVERY_S = 1.0
REGISTER_EVERY_S = 0.05


@dataclass
class Outcome:
    """One client's upload, as curl saw it."""

    status: int
    total_s: float
    #: From the upload's last byte to the answer's status line.
    answer_after_last_byte_s: float


def upload_command(base_url: str, user: tuple[int, str], wav: Path, address: str, rate: str | None) -> list[str]:
    """A raw-body upload streamed from disk (-T), from `address`, at `rate` bytes a second (unlimited: None)."""
    return [
        "curl", "-sS", "-v", "--trace-time", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
        "--interface", address, *(["--limit-rate", rate] if rate else []),
        "-X", "POST", "-T", str(wav), "-H", "Expect:",
        "-H", f"Authorization: Bearer {user[1]}", "-H", "Content-Type: audio/wav",
        f"{base_url}/record?user_id={user[0]}",
    ]  # fmt: skip


def outcome_of(stdout: str, trace: str) -> Outcome:
    status, total = stdout.split()
    uploaded = answered = None
    for line in trace.splitlines():
        stamp, _, said = line.partition(" ")
        if said.startswith(("* We are completely uploaded", "* upload completely sent off")):
            uploaded = clock_s(stamp)
        elif said.startswith("< HTTP/1.1 ") and answered is None:
            answered = clock_s(stamp)
    lag = answered - uploaded if answered is not None and uploaded is not None else float("nan")
    return Outcome(int(status), float(total), round(lag, 3))


def crowd_uploads(
    base_url: str, users: list[tuple[int, str]], wav: Path, rate: str | None, work: Path, results: Results
) -> list[Outcome]:
    """Every user's upload at once, each from an address of its own; their outcomes, in the users' order."""
    commands = [
        upload_command(base_url, user, wav, f"{ADDRESS_PREFIX}{number}", rate)
        for number, user in enumerate(users, start=1)
    ]
    first = users[0]
    results.aliases |= {
        first[1]: "$CROWD_TOKEN",
        f"user_id={first[0]}": "user_id=$CROWD_USER_ID",
        f"{ADDRESS_PREFIX}1": f"{ADDRESS_PREFIX}$N",
    }
    results.note(commands[0])
    traces = [work / f"trace-{number}.txt" for number in range(len(commands))]
    processes = []
    for command, trace in zip(commands, traces, strict=True):
        with trace.open("wb") as stderr:
            processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True))
    outputs = [process.communicate()[0] for process in processes]
    return [outcome_of(output, trace.read_text()) for output, trace in zip(outputs, traces, strict=True)]


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

    def run(self) -> None:
        next_reading = 0.0
        with httpx2.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stop.wait(REGISTER_EVERY_S):
                started = time.perf_counter()
                response = client.post("/register", json={"name": "probe"})
                if response.status_code == 201:
                    self.register_ms.append((time.perf_counter() - started) * 1000)
                if self.add_record is not None and time.monotonic() >= next_reading:
                    next_reading = time.monotonic() + MEMORY_EVERY_S
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
            ours = crowd_uploads(service, users, wav, crowd.rate, bench.work, results)
        measured = summary(ours, watch) | {"memory": upload_memory_mb(idle, watch.memory)}
        with watching(baseline.base_url, None) as plain_watch:
            plain_users = [baseline.user] * crowd.users
            theirs = crowd_uploads(baseline.base_url, plain_users, wav, crowd.rate, bench.work, results)
        results.real_links.append(
            {
                **asdict(crowd),
                "wav_mb": round(wav.stat().st_size / 2**20, 1),
                "service": measured,
                "baseline": summary(theirs, plain_watch),
            }
        )
