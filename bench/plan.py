"""How much of each measurement: the full run, and --quick's smoke run of a few seconds."""

from dataclasses import dataclass

#: Connections for throughput (wrk).
CONCURRENCY = 16
#: For latency while converting: enough to keep the function busy, not so much
#: that p99 measures the queue the load generator itself builds on two saturated cores.
LATENCY_CONCURRENCY = 4


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
)
