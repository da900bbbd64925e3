"""Step 8: RECORD_STORAGE=s3 beside postgres, in the same run: a second stack, its bytes in SeaweedFS.

Both stacks share the run's PostgreSQL; the second keeps new records in a
`weed mini` of its own (devstack.objectstore), and its gateway fetches
downloads from it. Each row is measured on both, back to back.
"""

import os
import secrets
import statistics
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.contender import register_user
from bench.steps import SMALL_RECORD_BYTES, Bench, timed_deletes, timed_floor, upload
from bench.targets import JUDGED_UPLOAD_SECONDS
from bench.tools import download_mb_per_s, make_wav, wrk, wrk_script
from common.config import Settings
from common.db import create_db_engine
from common.storage.backend import Backends
from devstack.background import RunningStack, start_in_background
from devstack.gateway import proxy_nginx_config
from devstack.objectstore import ObjectStore, running_object_store
from devstack.processes import free_port, nginx_command, serving


@contextmanager
def s3_stack(bench: Bench) -> Iterator[tuple[RunningStack, ObjectStore]]:
    with running_object_store(bench.work / "objects", "records", "bench", secrets.token_urlsafe(24)) as weed:
        environment = {**bench.environment, **weed.settings(), "DATABASE_URL": bench.database_url}
        stack = start_in_background(bench.work / "stack-s3", environment)
        try:
            yield stack, weed
        finally:
            stack.stop()


def object_storage(bench: Bench) -> None:
    plan, results = bench.plan, bench.results
    with s3_stack(bench) as (s3, weed):
        results.aliases[s3.base_url] = "$S3_GATEWAY"
        s3_settings = weed.function_settings(database_url=bench.database_url)
        s3_user = register_user(s3.base_url)
        results.aliases |= {
            s3_user[1]: "$S3_TOKEN",
            f"user_id={s3_user[0]}": "user_id=$S3_USER_ID",
            f"user={s3_user[0]}": "user=$S3_USER_ID",
        }
        stacks = {"postgres": (bench.stack, bench.user, None), "s3": (s3, s3_user, s3_settings)}

        # Uploads: each WAV to both stacks and to ffmpeg alone, in turn.
        seconds = JUDGED_UPLOAD_SECONDS if JUDGED_UPLOAD_SECONDS in plan.upload_seconds else plan.upload_seconds[0]
        wav = make_wav(bench.work / f"{seconds}s.wav", seconds, results)
        floor_mp3 = bench.work / "floor.mp3"
        for stack, user, _ in stacks.values():
            upload(stack.base_url, user, wav, None)  # warm up
        rounds = [
            (
                upload(bench.stack.base_url, bench.user, wav, None)[0],
                timed_floor(wav, floor_mp3, results),
                upload(s3.base_url, s3_user, wav, results)[0],
            )
            for _ in range(plan.pairs)
        ]
        postgres_s, floor_s, s3_s = (statistics.median(times) for times in zip(*rounds, strict=True))

        # First downloads of a large record (each a record of its own), and nginx from disk.
        data = os.urandom(plan.download_mb * 2**20)
        first: dict[str, list[float]] = {}
        for name, (stack, user, settings) in stacks.items():
            records = bench.seed(user[0], data, "first.wav", count=plan.download_repeats, settings=settings)
            first[name] = [
                download_mb_per_s(f"{stack.base_url}/record?id={record}&user={user[0]}", results) for record in records
            ]
        # Where an s3 first download's time goes: the store alone (the presigned GET
        # the relay makes), the same through a plain nginx proxy (the least any
        # store → nginx → client path costs), and the relay alone (no cache in front
        # of it, on records of its own so that nothing is cached ahead).
        [stored] = bench.seed(s3_user[0], data, "store.wav", settings=s3_settings)
        signed = presigned_url(s3_settings, stored)
        results.aliases[signed] = "$PRESIGNED_URL"
        store_alone = [download_mb_per_s(signed, results) for _ in range(plan.download_repeats)]
        with plain_proxy(bench, weed.endpoint_url) as proxy_base:
            proxied = signed.replace(weed.endpoint_url, proxy_base, 1)
            results.aliases[proxied] = "$PROXIED_PRESIGNED_URL"
            store_proxied = [download_mb_per_s(proxied, results) for _ in range(plan.download_repeats)]
        relay = f"http://127.0.0.1:{s3.ports.gateway_relay}"
        results.aliases[relay] = "$S3_RELAY"
        relay_alone = [
            download_mb_per_s(f"{relay}/record?id={record}&user={s3_user[0]}", results)
            for record in bench.seed(s3_user[0], data, "relay.wav", count=plan.download_repeats, settings=s3_settings)
        ]
        with bench.static_nginx("first.mp3", data) as static_base:
            download_mb_per_s(f"{static_base}/first.mp3", results)
            from_disk = statistics.median(
                download_mb_per_s(f"{static_base}/first.mp3", results) for _ in range(plan.download_repeats)
            )

        # A small record, cached and revalidated; then deletes.
        small: dict[str, Any] = {}
        deletes: dict[str, Any] = {}
        script = wrk_script(bench.work, "download")
        for name, (stack, user, settings) in stacks.items():
            [record] = bench.seed(user[0], os.urandom(SMALL_RECORD_BYTES), "small.wav", settings=settings)
            link = f"{stack.base_url}/record?id={record}&user={user[0]}"
            download_mb_per_s(link, results)  # fills the cache
            small[name] = wrk(link, plan.load_seconds, script, results)
            doomed = bench.seed(user[0], os.urandom(2**20), "deleted.wav", count=plan.deletes, settings=settings)
            deletes[name] = timed_deletes(stack.base_url, user, doomed)

    results.object_storage = {
        "upload_wav_seconds": seconds,
        "upload_rounds": [[round(time, 3) for time in each] for each in rounds],
        "upload_ratio": {"postgres": round(postgres_s / floor_s, 3), "s3": round(s3_s / floor_s, 3)},
        "download_mb": plan.download_mb,
        "nginx_from_disk_mb_per_s": round(from_disk),
        "first_download_mb_per_s": {name: round(statistics.median(runs)) for name, runs in first.items()},
        "first_download_ratio": {name: round(statistics.median(runs) / from_disk, 3) for name, runs in first.items()},
        "first_download_runs": {name: [round(speed) for speed in runs] for name, runs in first.items()},
        "s3_store_alone_mb_per_s": round(statistics.median(store_alone)),
        "s3_store_alone_ratio": round(statistics.median(store_alone) / from_disk, 3),
        "s3_store_proxied_mb_per_s": round(statistics.median(store_proxied)),
        "s3_store_proxied_ratio": round(statistics.median(store_proxied) / from_disk, 3),
        "s3_relay_alone_mb_per_s": round(statistics.median(relay_alone)),
        "s3_relay_alone_ratio": round(statistics.median(relay_alone) / from_disk, 3),
        "cached_small": small,
        "delete": deletes,
    }


def presigned_url(settings: Settings, record: uuid.UUID) -> str:
    """The URL get_record hands the relay for `record`: a GET signed for a minute."""
    engine = create_db_engine(settings)
    try:
        return Backends(settings, engine).of("s3").signed_url(record)
    finally:
        engine.dispose()


@contextmanager
def plain_proxy(bench: Bench, upstream: str) -> Iterator[str]:
    """A plain nginx proxy (no cache) in front of `upstream`; yields its base URL."""
    prefix, port = bench.work / "nginx-proxy", free_port()
    with serving(nginx_command(prefix, proxy_nginx_config(prefix, upstream, port)), port):
        yield f"http://127.0.0.1:{port}"
