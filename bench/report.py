"""benchmarks.md: report.md.template, its tables filled from the results, each judged by its target."""

from pathlib import Path
from string import Template
from typing import Any

from bench import beside
from bench.lean import SETTLE_S
from bench.links import MEMORY_EVERY_S, REGISTER_EVERY_S
from bench.plan import CONCURRENCY, LATENCY_CONCURRENCY, Plan
from bench.results import Results
from bench.steps import SMALL_RECORD_BYTES
from bench.targets import JUDGED_UPLOAD_SECONDS, TARGETS

TEMPLATE = Path(__file__).with_name("report.md.template")
SMALL_KB = SMALL_RECORD_BYTES // 1000


def row(*cells: object) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def rate_row(name: str, measured: dict[str, Any], *more: object) -> str:
    return row(
        name,
        measured["requests_per_s"],
        f"{measured['p50_ms']} ms",
        f"{measured['p99_ms']} ms",
        measured["errors"],
        *more,
    )


def upload_rows(results: Results) -> list[str]:
    target = TARGETS["upload_ratio"]
    return [
        row(
            f"{up['wav_seconds']} s",
            f"{up['wav_mb']} MB",
            f"{up['median_upload_s']} s",
            f"{up['median_floor_s']} s",
            up["ratio"],
            f"{up['median_baseline_s']} s",
            up["baseline_ratio"],
            target.status(up["ratio"]) if up["wav_seconds"] >= JUDGED_UPLOAD_SECONDS else "–",
        )
        for up in results.uploads
    ]


def beside_rows(results: Results) -> list[str]:
    return [
        row(
            comparison.name,
            f"{comparison.service:g} {comparison.unit}",
            f"{comparison.baseline:g} {comparison.unit}",
            "**behind**" if comparison.behind else "ahead or level",
            comparison.target,
            "met" if comparison.target_met else "**not met**",
        )
        for comparison in beside.rows(results)
    ]


def lean_rows(results: Results) -> list[str]:
    return [
        row(
            name,
            f"{lean['idle_rss_mb']} MB",
            f"{lean['start_s']} s",
            "–" if name == "baseline" else TARGETS["idle_rss_mb"].status(lean["idle_rss_mb"]),
            "–" if name == "baseline" else TARGETS["start_s"].status(lean["start_s"]),
        )
        for name, lean in results.lean.items()
    ]


def memory_rows(results: Results) -> list[str]:
    return [
        row(
            f"{m['wav_seconds']} s",
            f"{m['wav_mb']} MB",
            f"{m['add_record_idle_mb']} MB → +{m['add_record_growth_mb']} MB",
            f"{m['ffmpeg_peak_mb']} MB",
            f"{m['get_record_idle_mb']} MB → +{m['get_record_growth_mb']} MB",
            TARGETS["memory_growth_mb"].status(max(m["add_record_growth_mb"], m["get_record_growth_mb"])),
        )
        for m in results.memory
    ]


def busy_row(results: Results) -> str:
    busy = results.register_while_converting
    each_run = zip(busy["p99_runs_ms"], busy["gateway_p99_runs_ms"], strict=True)
    return row(
        busy["uploads"],
        busy["uploads_completed"],
        busy["requests_per_s"],
        f"{busy['p50_ms']} ms",
        f"{busy['p99_ms']} ms",
        f"{busy['gateway_p99_ms']} ms",
        ", ".join(f"{client:g} / {gateway:g} ms" for client, gateway in each_run),
        busy["errors"],
        TARGETS["busy_p99_ms"].status(busy["p99_ms"]),
    )


def download_rows(results: Results) -> list[str]:
    download, target = results.download, TARGETS["download_ratio"]
    return [
        row(
            "cached (every download after a record's first)",
            download["cached_mb_per_s"],
            download["cached_ratio"],
            target.status(download["cached_ratio"]),
        ),
        row(
            "first (PostgreSQL → get_record → gateway, filling the cache)",
            download["first_mb_per_s"],
            download["first_ratio"],
            TARGETS["first_download_ratio"].status(download["first_ratio"]),
        ),
        row("get_record alone (its own port)", download["function_mb_per_s"], download["function_ratio"], "–"),
        row("the baseline (one bytea, one query)", download["baseline_mb_per_s"], download["baseline_ratio"], "–"),
        row("nginx from disk", download["nginx_from_disk_mb_per_s"], 1, "–"),
    ]


def object_storage_rows(results: Results) -> list[str]:
    measured = results.object_storage
    uploads, first = measured["upload_ratio"], measured["first_download_ratio"]
    speeds, small, deletes = measured["first_download_mb_per_s"], measured["cached_small"], measured["delete"]
    return [
        row(
            "upload ÷ ffmpeg alone",
            uploads["postgres"],
            uploads["s3"],
            TARGETS["s3_upload_ratio"].status(uploads["s3"] - uploads["postgres"]),
        ),
        row(
            f"first download of {measured['download_mb']} MB, MB/s (÷ nginx from disk, "
            f"{measured['nginx_from_disk_mb_per_s']} MB/s)",
            f"{speeds['postgres']} ({first['postgres']}×)",
            f"{speeds['s3']} ({first['s3']}×)",
            TARGETS["s3_first_download_ratio"].status(first["s3"]),
        ),
        row(
            "of which: the store alone, its presigned GET with curl, MB/s (÷ nginx from disk)",
            "–",
            f"{measured['s3_store_alone_mb_per_s']} ({measured['s3_store_alone_ratio']}×)",
            "–",
        ),
        row(
            "of which: the store through a plain nginx proxy, no cache, MB/s (÷ nginx from disk)",
            "–",
            f"{measured['s3_store_proxied_mb_per_s']} ({measured['s3_store_proxied_ratio']}×)",
            "–",
        ),
        row(
            "of which: the object relay alone, first fetch (store → nginx → curl), MB/s (÷ nginx from disk)",
            "–",
            f"{measured['s3_relay_alone_mb_per_s']} ({measured['s3_relay_alone_ratio']}×)",
            "–",
        ),
        row(
            f"a {SMALL_KB} kB record, cached and revalidated, req/s (p99)",
            f"{small['postgres']['requests_per_s']} ({small['postgres']['p99_ms']} ms)",
            f"{small['s3']['requests_per_s']} ({small['s3']['p99_ms']} ms)",
            "–",
        ),
        row(
            "deletes of 1 MB records, per second (p99)",
            f"{deletes['postgres']['per_s']} ({deletes['postgres']['p99_ms']} ms)",
            f"{deletes['s3']['per_s']} ({deletes['s3']['p99_ms']} ms)",
            "–",
        ),
    ]


def statuses(summary: dict[str, Any]) -> str:
    return ", ".join(f"{count} × {status}" for status, count in sorted(summary["statuses"].items()))


def answer_lag(summary: dict[str, Any]) -> str:
    return f"{summary['answer_after_last_byte_median_s']} / {summary['answer_after_last_byte_p99_s']} s"


def link_rows(results: Results) -> list[str]:
    return [
        row(
            beside.crowd_wording(crowd),
            f"{statuses(crowd['service'])} / {statuses(crowd['baseline'])}",
            answer_lag(crowd["service"]),
            answer_lag(crowd["baseline"]),
            f"{crowd['service']['total_max_s']} / {crowd['baseline']['total_max_s']}",
            f"{crowd['service']['register_p99_ms']} / {crowd['baseline']['register_p99_ms']} ms",
            "met" if beside.crowd_targets_met(crowd) else "**not met**",
        )
        for crowd in results.real_links
    ]


def links_memory(results: Results) -> str:
    """What an upload in flight costs, at the most crowded reading of the largest crowd."""
    crowd = max(results.real_links, key=lambda crowd: crowd["users"])
    memory = crowd["service"]["memory"]
    target = TARGETS["upload_memory_mb"]
    return (
        f"Memory per upload in flight, read every {MEMORY_EVERY_S:g} s during crowd ({crowd['name']}), at its most "
        f"crowded reading ({memory['converting']} converting): add_record grew from {memory['add_record_idle_mb']} "
        f"to {memory['add_record_mb']} MB, {memory['function_share_mb']} MB an upload, and each ffmpeg's private "
        f"memory (USS) was {memory['ffmpeg_private_mb']} MB: **{memory['per_upload_mb']} MB an upload**. "
        f"Target: {target.wording}: {target.status(memory['per_upload_mb'])}. The pages every ffmpeg shares "
        "(its libraries) are the page cache's, paid once however many run; the kernel's socket and pipe "
        "buffers are bounded apart (common/serving.py, functions/add_record/convert.py)."
    )


def render(results: Results, plan: Plan, quick: bool) -> str:
    owner, small = results.owner, results.download["small"]
    first, middle = (owner["list"][page]["requests_per_s"] for page in ("first page", "middle page"))
    gateway = next(rate for rate in results.register if rate["target"].startswith("gateway"))
    register_targets = (TARGETS["register_4x_low"], TARGETS["register_4x_high"])
    scan = owner["middle_page_plan"]
    delete = owner["delete"]
    paced = results.paced_upload
    values = {
        "beside": "\n".join(beside_rows(results)),
        "paced": (
            f"{paced['wav_seconds']} s WAV sent with `curl --limit-rate {paced['rate']}`: answered "
            f"{paced['answer_after_last_byte_s']} s after its last byte (the baseline: "
            f"{paced['baseline_answer_after_last_byte_s']} s). Target: {TARGETS['paced_answer_s'].wording}."
        ),
        "lean": "\n".join(lean_rows(results)),
        "lean_targets": f"{TARGETS['idle_rss_mb'].wording}; {TARGETS['start_s'].wording}",
        "list_target": TARGETS["list_rate"].wording,
        "first_download_target": TARGETS["first_download_ratio"].wording,
        "quick_flag": " QUICK=1" if quick else "",
        "run_kind": "smoke run, tiny inputs" if quick else "full run",
        "machine": "\n".join(row(key, value) for key, value in results.machine.items()),
        "pairs": plan.pairs,
        "upload_target": TARGETS["upload_ratio"].wording,
        "uploads": "\n".join(upload_rows(results)),
        "memory_target": TARGETS["memory_growth_mb"].wording,
        "memory": "\n".join(memory_rows(results)),
        "concurrency": CONCURRENCY,
        "latency_concurrency": LATENCY_CONCURRENCY,
        "load_seconds": plan.load_seconds,
        "load_runs": plan.load_runs,
        "register_targets": "; ".join(target.wording for target in register_targets),
        "register": "\n".join(
            rate_row(rate["target"], rate, ", ".join(map(str, rate["runs"]))) for rate in results.register
        ),
        "register_statuses": ", ".join(
            f"{target.status(gateway['requests_per_s'])} ({target.wording})" for target in register_targets
        ),
        "busy_target": TARGETS["busy_p99_ms"].wording,
        "busy": busy_row(results),
        "download_mb": results.download["size_mb"],
        "download_repeats": plan.download_repeats,
        "download_target": TARGETS["download_ratio"].wording,
        "download": "\n".join(download_rows(results)),
        "small_kb": small["size_kb"],
        "small": "\n".join(
            [
                rate_row("cached, revalidated with get_record", small["cached_revalidated"]),
                rate_row("get_record's own 304 for the same link (the revalidation alone)", small["function_304"]),
                rate_row("the baseline (one bytea, one query, no cache)", small["baseline"]),
                rate_row("nginx from disk", small["nginx_from_disk"]),
            ]
        ),
        "listed": f"{owner['records']:,}",
        "listed_half": f"{owner['records'] // 2:,}",
        "settle": SETTLE_S,
        "starts": plan.starts,
        "middle_plan": f"{scan['node']} on `{scan['index']}`, {scan['execution_ms']:.2f} ms",
        "middle_target": TARGETS["middle_page_ratio"].wording,
        "listing": "\n".join(
            rate_row(
                name,
                rate,
                TARGETS["middle_page_ratio"].status(middle / first)
                if name == "middle page"
                else TARGETS["list_rate"].status(first)
                if name == "first page"
                else "–",
            )
            for name, rate in owner["list"].items()
        ),
        "deletes": f"{delete['deletes']} records of {delete['record_mb']} MB (four chunks each)",
        "delete_rate": f"{delete['per_s']} per second, p50 {delete['p50_ms']} ms, p99 {delete['p99_ms']} ms",
        "s3_upload_seconds": results.object_storage["upload_wav_seconds"],
        "s3_upload_target": TARGETS["s3_upload_ratio"].wording,
        "s3_first_download_target": TARGETS["s3_first_download_ratio"].wording,
        "object_storage": "\n".join(object_storage_rows(results)),
        "register_every_ms": round(REGISTER_EVERY_S * 1000),
        "links_targets": "; ".join(
            TARGETS[name].wording
            for name in ("links_created", "links_answer_median_s", "links_answer_p99_s", "links_spread")
        )
        + f"; /register {TARGETS['busy_p99_ms'].wording} during (c)",
        "links": "\n".join(link_rows(results)),
        "links_memory": links_memory(results),
        "commands": "\n".join(results.commands),
    }
    return Template(TEMPLATE.read_text()).substitute(values)
