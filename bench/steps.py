"""Measurements 1 to 7 (the eighth: bench.objects). Each takes the stack and the plan, and fills its results."""

import json
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import text

from bench.contender import Baseline, baseline_command, register_user
from bench.lean import median_start, second_copy
from bench.memory import RssWatch
from bench.plan import LATENCY_CONCURRENCY, Plan
from bench.results import Results
from bench.tools import (
    LATENCY_USER_AGENT,
    ab,
    curl,
    download_mb_per_s,
    ffmpeg_to_mp3,
    make_wav,
    paced_upload_lag_s,
    run,
    wrk,
    wrk_script,
)
from common.config import Settings
from common.db import create_db_engine
from common.security import hash_token
from common.storage.backend import Backends
from devstack.background import RunningStack, ffmpeg_children
from devstack.gateway import static_nginx_config
from devstack.processes import free_port, nginx_command, serving
from devstack.seed import seed_listed, seed_record
from devstack.topology import ROOT
from functions.list_records.store import owners_pages_on, pages_query

REGISTER_BODY = '{"name":"bench"}'


@dataclass
class Bench:
    """What every step works with."""

    stack: RunningStack
    database_url: str
    user: tuple[int, str]
    plan: Plan
    work: Path
    results: Results
    baseline: Baseline
    #: The stack's environment (less DATABASE_URL), for the step that starts a second one.
    environment: dict[str, str] = field(default_factory=dict)

    def seed(
        self, user_id: int, data: bytes, name: str, count: int = 1, settings: Settings | None = None
    ) -> list[uuid.UUID]:
        """`count` records of `data`, stored where `settings` (PostgreSQL's by default) put new records."""
        settings = settings or Settings(database_url=self.database_url)
        engine = create_db_engine(settings)
        try:
            backend = Backends(settings, engine).writing
            return [seed_record(backend, user_id, data, name) for _ in range(count)]
        finally:
            engine.dispose()

    def upload(self, wav: Path, noted: bool = False) -> tuple[float, str]:
        """Upload to 201 as curl sees it: (seconds, link)."""
        return upload(self.stack.base_url, self.user, wav, self.results if noted else None)

    @contextmanager
    def static_nginx(self, name: str, data: bytes) -> Iterator[str]:
        """nginx serving `data` from disk as /`name`, the floor for downloads; yields its base URL."""
        root = self.work / f"static-{name}"
        root.mkdir(mode=0o755)
        (root / name).write_bytes(data)
        (root / name).chmod(0o644)  # nginx's workers (www-data, when run as root) read it
        prefix, port = self.work / f"nginx-{name}", free_port()
        config = static_nginx_config(prefix, root, port)
        with serving(nginx_command(prefix, config), port):
            base = f"http://127.0.0.1:{port}"
            self.results.aliases[base] = "$STATIC"
            yield base


def upload(base_url: str, user: tuple[int, str], wav: Path, results: Results | None) -> tuple[float, str]:
    """Upload to 201 as curl sees it, the same request to the service and the baseline: (seconds, link)."""
    body, status, seconds, _ = curl(
        [
            "-H", f"Authorization: Bearer {user[1]}", "-H", "Content-Type: audio/wav",
            "--data-binary", f"@{wav}", f"{base_url}/record?user_id={user[0]}",
        ],
        results,
    )  # fmt: skip
    if status != 201:
        raise RuntimeError(f"upload answered {status}: {body}")
    link: str = json.loads(body)["url"]
    return seconds, link


def timed_floor(wav: Path, out: Path, results: Results) -> float:
    started = time.perf_counter()
    ffmpeg_to_mp3(wav, out, results)
    return time.perf_counter() - started


def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return sorted(runs, key=lambda run: run[key])[len(runs) // 2]


def percentile(values: list[float], percent: int) -> float:
    """Nearest rank, as ab reports its own."""
    ordered = sorted(values)
    return round(ordered[max(0, -(-len(ordered) * percent // 100) - 1)], 1)


# ---- 1. Upload to 201 against ffmpeg alone ----

#: A good home uplink: the client, not the service, sets the pace.
PACED_RATE = "5M"


def uploads(bench: Bench) -> None:
    """Each WAV to the service, to ffmpeg alone and to the baseline, in turn; then the longest at 5 MB/s."""
    baseline = bench.baseline
    for seconds in bench.plan.upload_seconds:
        wav = make_wav(bench.work / f"{seconds}s.wav", seconds, bench.results)
        floor_mp3 = bench.work / "floor.mp3"
        bench.upload(wav)  # warm up the function, the baseline and the page cache
        upload(baseline.base_url, baseline.user, wav, None)
        timed_floor(wav, floor_mp3, bench.results)
        rounds = [
            (
                bench.upload(wav, noted=True)[0],
                timed_floor(wav, floor_mp3, bench.results),
                upload(baseline.base_url, baseline.user, wav, bench.results)[0],
            )
            for _ in range(bench.plan.pairs)
        ]
        service, floor, plain = (statistics.median(times) for times in zip(*rounds, strict=True))
        bench.results.uploads.append(
            {
                "wav_seconds": seconds,
                "wav_mb": round(wav.stat().st_size / 2**20, 1),
                "rounds": [[round(time, 3) for time in each] for each in rounds],
                "median_upload_s": round(service, 3),
                "median_floor_s": round(floor, 3),
                "median_baseline_s": round(plain, 3),
                "ratio": round(service / floor, 3),
                "baseline_ratio": round(plain / floor, 3),
            }
        )
    seconds = bench.plan.upload_seconds[-1]
    longest = make_wav(bench.work / f"{seconds}s.wav", seconds, bench.results)
    bench.results.paced_upload = {
        "wav_seconds": seconds,
        "rate": PACED_RATE,
        "answer_after_last_byte_s": paced_upload_lag_s(
            bench.stack.base_url, bench.user, longest, PACED_RATE, bench.results
        ),
        "baseline_answer_after_last_byte_s": paced_upload_lag_s(
            baseline.base_url, baseline.user, longest, PACED_RATE, bench.results
        ),
    }


# ---- 2. Memory above idle ----


def memory(bench: Bench) -> None:
    processes = bench.stack.function_processes()
    for seconds in bench.plan.memory_seconds:
        wav = make_wav(bench.work / f"{seconds}s.wav", seconds, bench.results)
        with RssWatch({"add_record": processes["add_record"]}) as upload_watch:
            _, link = bench.upload(wav)
        with RssWatch({"get_record": processes["get_record"]}) as download_watch:
            run(["curl", "-sS", "-o", "/dev/null", link.replace("localhost", "127.0.0.1")])
        bench.results.memory.append(
            {
                "wav_seconds": seconds,
                "wav_mb": round(wav.stat().st_size / 2**20, 1),
                "add_record_idle_mb": upload_watch.idle_mb("add_record"),
                "add_record_growth_mb": upload_watch.growth_mb("add_record"),
                "ffmpeg_peak_mb": round(upload_watch.ffmpeg_peak / 2**20, 1),
                "get_record_idle_mb": download_watch.idle_mb("get_record"),
                "get_record_growth_mb": download_watch.growth_mb("get_record"),
            }
        )


# ---- 3. POST /register at concurrency ----


def register(bench: Bench) -> None:
    script = wrk_script(bench.work, "register", "POST", REGISTER_BODY, **{"Content-Type": "application/json"})
    targets = {
        "gateway (nginx)": f"{bench.stack.base_url}/register",
        "function direct": f"http://127.0.0.1:{bench.stack.ports.functions['register']}/register",
        "baseline": f"{bench.baseline.base_url}/register",
    }
    for target, url in targets.items():
        wrk(url, 1, script, bench.results)  # warm up: pool, caches
        runs = [wrk(url, bench.plan.load_seconds, script, bench.results) for _ in range(bench.plan.load_runs)]
        median = median_run(runs, "requests_per_s")
        bench.results.register.append({"target": target, **median, "runs": [run["requests_per_s"] for run in runs]})


# ---- 4. /register while two uploads convert ----


def gateway_p99_ms(stack: RunningStack, since: int, requests: int) -> float:
    """p99 of the gateway's own request times for the run's requests (its log is flushed once a second)."""
    deadline = time.monotonic() + 10
    while len(times := stack.request_times_ms(LATENCY_USER_AGENT, since)) < requests:
        assert time.monotonic() < deadline, f"the gateway logged {len(times)} of {requests} requests"
        time.sleep(0.2)
    return percentile(times, 99)


def busy(bench: Bench) -> None:
    plan, stack = bench.plan, bench.stack
    wav = make_wav(bench.work / f"{plan.busy_upload_seconds}s.wav", plan.busy_upload_seconds, bench.results)
    body = bench.work / "register.json"
    body.write_text(REGISTER_BODY)
    add_record = stack.function_processes()["add_record"]
    stop = threading.Event()
    completed: list[float] = []

    def keep_uploading() -> None:
        while not stop.is_set():
            completed.append(bench.upload(wav)[0])

    uploaders = [threading.Thread(target=keep_uploading, daemon=True) for _ in range(2)]
    for uploader in uploaders:
        uploader.start()
    deadline = time.monotonic() + 30
    while len(ffmpeg_children(add_record)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    runs = []
    for _ in range(plan.load_runs):
        since = stack.access_log.stat().st_size
        measured = ab(f"{stack.base_url}/register", plan.load_seconds, body, bench.results, LATENCY_CONCURRENCY)
        runs.append({**measured, "gateway_p99_ms": gateway_p99_ms(stack, since, measured["requests"])})
    stop.set()
    for uploader in uploaders:
        uploader.join(timeout=120)
    bench.results.register_while_converting = {
        **median_run(runs, "p99_ms"),
        "p99_runs_ms": [run["p99_ms"] for run in runs],
        "gateway_p99_runs_ms": [run["gateway_p99_ms"] for run in runs],
        "uploads": f"2 at a time, {plan.busy_upload_seconds} s WAVs",
        "uploads_completed": len(completed),
    }


# ---- 5. Downloads ----

#: A 5 s MP3 at 192 kb/s.
SMALL_RECORD_BYTES = 120_000


def download(bench: Bench) -> None:
    """The same bytes three ways: first downloads (the gateway's cache fills from get_record), cached
    downloads, and nginx serving a file from disk; plus get_record alone, without the gateway."""
    plan, stack, results, user = bench.plan, bench.stack, bench.results, bench.user
    data = os.urandom(plan.download_mb * 2**20)
    # One record per first download: each must miss the gateway's cache.
    record_ids = bench.seed(user[0], data, "bench.wav", count=plan.download_repeats + 1)
    query = [f"id={record_id}&user={user[0]}" for record_id in record_ids]
    [plain_id] = bench.baseline.seed(data)
    plain = f"id={plain_id}&user={bench.baseline.user[0]}"
    function_base = f"http://127.0.0.1:{stack.ports.functions['get_record']}"
    results.aliases[function_base] = "$GET_RECORD_FUNCTION"
    logged_before = stack.access_log.stat().st_size
    gateway = f"{stack.base_url}/record"
    repeats = range(plan.download_repeats)
    with bench.static_nginx("record.mp3", data) as static_base:
        download_mb_per_s(f"{function_base}/record?{query[0]}", results)  # warm up; fills nothing
        download_mb_per_s(f"{static_base}/record.mp3", results)
        measured = {
            "first": [download_mb_per_s(f"{gateway}?{each}", results) for each in query[1:]],
            "cached": [download_mb_per_s(f"{gateway}?{query[1]}", results) for _ in repeats],
            "function": [download_mb_per_s(f"{function_base}/record?{query[0]}", results) for _ in repeats],
            "baseline": [download_mb_per_s(f"{bench.baseline.base_url}/record?{plain}", results) for _ in repeats],
        }
        baseline = [download_mb_per_s(f"{static_base}/record.mp3", results) for _ in repeats]
    time.sleep(1.5)  # the access log's flush interval
    # What the gateway's cache did for each download: the first ones must miss, the rest be
    # revalidated with get_record and sent from the cache.
    statuses = Counter(stack.record_cache_statuses(since=logged_before))
    floor = statistics.median(baseline)
    results.download = {
        "gateway_cache": dict(statuses),
        "size_mb": plan.download_mb,
        "nginx_from_disk_mb_per_s": round(floor),
        **{f"{name}_mb_per_s": round(statistics.median(runs)) for name, runs in measured.items()},
        **{f"{name}_ratio": round(statistics.median(runs) / floor, 3) for name, runs in measured.items()},
        "runs": {name: [round(speed) for speed in runs] for name, runs in (measured | {"nginx": baseline}).items()},
        "small": small_downloads(bench),
    }


def small_downloads(bench: Bench) -> dict[str, Any]:
    """Requests per second for a 120 kB record (a 5 s MP3): from the gateway's cache (revalidated),
    get_record's own 304 for it (the revalidation alone), the baseline, and nginx from disk.

    The revalidation costs a round trip to get_record per download; this is where it shows most.
    """
    data = os.urandom(SMALL_RECORD_BYTES)
    [record_id] = bench.seed(bench.user[0], data, "small.wav")
    [plain_id] = bench.baseline.seed(data)
    link = f"record?id={record_id}&user={bench.user[0]}"
    plain = f"{bench.baseline.base_url}/record?id={plain_id}&user={bench.baseline.user[0]}"
    cached = f"{bench.stack.base_url}/{link}"
    download_mb_per_s(cached, bench.results)  # fills the cache
    function = f"http://127.0.0.1:{bench.stack.ports.functions['get_record']}/{link}"
    etag = httpx2.head(function).headers["etag"]
    seconds, results = bench.plan.load_seconds, bench.results
    script = wrk_script(bench.work, "download")
    revalidation = wrk_script(bench.work, "revalidation", **{"If-None-Match": etag.replace('"', '\\"')})
    with bench.static_nginx("small.mp3", data) as static_base:
        return {
            "size_kb": SMALL_RECORD_BYTES // 1000,
            "cached_revalidated": wrk(cached, seconds, script, results),
            "function_304": wrk(function, seconds, revalidation, results),
            "baseline": wrk(plain, seconds, script, results),
            "nginx_from_disk": wrk(f"{static_base}/small.mp3", seconds, script, results),
        }


# ---- 6. The owner's view: list and delete ----


def records_scan(node: dict[str, Any]) -> dict[str, Any] | None:
    """The plan's node that reads `records` (the page's scan), depth first."""
    if node.get("Relation Name") == "records":
        return node
    for child in node.get("Plans", []):
        if (found := records_scan(child)) is not None:
            return found
    return None


#: The page the benchmark asks for (list_records' default).
PAGE_SIZE = 20


def owner(bench: Bench) -> None:
    """GET /records with `listed_records` records for one user (first page, and a page in the middle),
    and DELETE /record, one record after another over one connection."""
    plan, stack, results = bench.plan, bench.stack, bench.results
    user = register_user(stack.base_url)
    results.aliases[user[1]] = "$OWNER_TOKEN"
    engine = create_db_engine(Settings(database_url=bench.database_url))
    try:
        seed_listed(engine, user[0], plan.listed_records)
        # The product's own page query, from the middle of the list: its plan, and its cursor.
        digest = hash_token(user[1])
        with engine.connect() as connection:
            [first_half] = owners_pages_on(connection, [(digest, plan.listed_records // 2, None)])
            assert first_half is not None
            middle = first_half.records[-1].position
            statement, values = pages_query([(digest, PAGE_SIZE, middle)])
            explained = connection.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement.text}"), values)
            plan_json = explained.scalar_one()[0]
    finally:
        engine.dispose()
    cursor_text = middle.encode()
    results.aliases[cursor_text] = "$CURSOR"
    script = wrk_script(bench.work, "list", Authorization=f"Bearer {user[1]}")
    pages = {
        "first page": f"{stack.base_url}/records?limit={PAGE_SIZE}",
        "middle page": f"{stack.base_url}/records?limit={PAGE_SIZE}&cursor={cursor_text}",
    }
    listing = {}
    for name, url in pages.items():
        wrk(url, 1, script, results)  # warm up
        listing[name] = wrk(url, plan.load_seconds, script, results)
    baseline = bench.baseline
    lister = register_user(baseline.base_url)
    baseline.seed_listed(lister[0], plan.listed_records)
    plain_script = wrk_script(bench.work, "baseline-list", Authorization=f"Bearer {lister[1]}")
    plain_pages = {
        "baseline first page": f"{baseline.base_url}/records?limit={PAGE_SIZE}",
        "baseline middle page": f"{baseline.base_url}/records?limit={PAGE_SIZE}&offset={plan.listed_records // 2}",
    }
    for name, url in plain_pages.items():
        wrk(url, 1, plain_script, results)
        listing[name] = wrk(url, plan.load_seconds, plain_script, results)
    scan = records_scan(plan_json["Plan"])
    assert scan is not None, "the page's plan reads records"
    results.owner = {
        "records": plan.listed_records,
        "list": listing,
        "middle_page_plan": {
            "node": scan["Node Type"],
            "index": scan.get("Index Name"),
            "execution_ms": plan_json["Execution Time"],
        },
        "delete": timed_deletes(
            bench.stack.base_url, user, bench.seed(user[0], os.urandom(2**20), "deleted.wav", count=bench.plan.deletes)
        ),
    }


def timed_deletes(base_url: str, user: tuple[int, str], record_ids: list[uuid.UUID]) -> dict[str, Any]:
    """DELETE of `user`'s records (of 1 MB: four chunks, or one object), one after another through the gateway."""
    latencies: list[float] = []
    with httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {user[1]}"}) as client:
        started = time.monotonic()
        for record_id in record_ids:
            before = time.perf_counter()
            response = client.delete(f"/record?id={record_id}")
            latencies.append((time.perf_counter() - before) * 1000)
            if response.status_code != 204:
                raise RuntimeError(f"DELETE answered {response.status_code}")
        elapsed = time.monotonic() - started
    return {
        "deletes": len(record_ids),
        "record_mb": 1,
        "per_s": round(len(record_ids) / elapsed),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


# ---- 7. Lean functions ----


def lean(bench: Bench) -> None:
    """Each function started afresh beside the stack, as the stack runs it, and the baseline alike."""
    for name, running in bench.stack.function_processes().items():
        bench.results.lean[name] = median_start(bench.plan.starts, *second_copy(running))
    port = free_port()
    command = baseline_command(port)
    baseline = median_start(bench.plan.starts, command, bench.baseline.environment, port, str(ROOT))
    bench.results.lean["baseline"] = baseline


#: Steps 1 to 7; bench.objects adds the eighth.
STEPS = {
    "uploads": uploads,
    "memory": memory,
    "register": register,
    "busy": busy,
    "download": download,
    "owner": owner,
    "lean": lean,
}
