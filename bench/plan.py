"""How much of each measurement: the full run, and --quick's smoke run of a few seconds."""

from dataclasses import dataclass

#: Connections for throughput (wrk).
CONCURRENCY = 16
#: For latency while converting: enough to keep the function busy, not so much
#: that p99 measures the queue the load generator itself builds on two saturated cores.
LATENCY_CONCURRENCY = 4


@dataclass(frozen=True)
class Crowd:
    """People uploading at once, each from an address of their own, over an uplink of `rate` (curl's
    --limit-rate: 512K is 512 KiB/s; None: loopback's own speed)."""

    name: str
    users: int
    wav_seconds: int
    rate: str | None


#: Issue 31's rows: a 4 Mbit/s uplink, a 16 Mbit/s one, a 1 Mbit/s mobile one, and no limit (CPU-bound).
CROWDS = (
    Crowd("a", 32, 60, "512K"),
    Crowd("b", 8, 300, "2M"),
    Crowd("c", 128, 30, "128K"),
    Crowd("d", 16, 300, None),
)


@dataclass(frozen=True)
class Plan:
    upload_seconds: tuple[int, ...] = (10, 60, 300)
    pairs: int = 5
    memory_seconds: tuple[int, ...] = (300, 1800)
    load_seconds: int = 10
    load_runs: int = 3
    busy_upload_seconds: int = 300
    download_mb: int = 50
    download_repeats: int = 5
    listed_records: int = 100_000
    deletes: int = 400
    #: Starts of each function, timed; the median is reported.
    starts: int = 3
    crowds: tuple[Crowd, ...] = CROWDS


QUICK = Plan(
    upload_seconds=(2,),
    pairs=1,
    memory_seconds=(3,),
    load_seconds=1,
    load_runs=1,
    busy_upload_seconds=3,
    download_mb=2,
    download_repeats=1,
    listed_records=200,
    deletes=10,
    starts=1,
    crowds=(Crowd("a", 4, 2, "512K"), Crowd("d", 2, 2, None)),
)
