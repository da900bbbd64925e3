"""benchmarks.md: report.md.template, its tables filled from the results, each judged by its target."""

from pathlib import Path
from string import Template
from typing import Any

from bench.plan import CONCURRENCY, LATENCY_CONCURRENCY, Plan
from bench.results import Results
from bench.targets import JUDGED_UPLOAD_SECONDS, TARGETS

TEMPLATE = Path(__file__).with_name("report.md.template")


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
            target.status(up["ratio"]) if up["wav_seconds"] >= JUDGED_UPLOAD_SECONDS else "–",
        )
        for up in results.uploads
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
            target.status(download["first_ratio"]),
        ),
        row("get_record alone (its own port)", download["function_mb_per_s"], download["function_ratio"], "–"),
        row("nginx from disk", download["nginx_from_disk_mb_per_s"], 1, "–"),
    ]


def render(results: Results, plan: Plan, quick: bool) -> str:
    owner, small = results.owner, results.download["small"]
    first, middle = (owner["list"][page]["requests_per_s"] for page in ("first page", "middle page"))
    gateway = next(rate for rate in results.register if rate["target"].startswith("gateway"))
    register_targets = (TARGETS["register_4x_low"], TARGETS["register_4x_high"])
    scan = owner["middle_page_plan"]
    delete = owner["delete"]
    values = {
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
                rate_row("nginx from disk", small["nginx_from_disk"]),
            ]
        ),
        "listed": f"{owner['records']:,}",
        "middle_plan": f"{scan['node']} on `{scan['index']}`, {scan['execution_ms']:.2f} ms",
        "middle_target": TARGETS["middle_page_ratio"].wording,
        "listing": "\n".join(
            rate_row(name, rate, TARGETS["middle_page_ratio"].status(middle / first) if name == "middle page" else "–")
            for name, rate in owner["list"].items()
        ),
        "deletes": f"{delete['deletes']} records of {delete['record_mb']} MB (four chunks each)",
        "delete_rate": f"{delete['per_s']} per second, p50 {delete['p50_ms']} ms, p99 {delete['p99_ms']} ms",
        "commands": "\n".join(results.commands),
    }
    return Template(TEMPLATE.read_text()).substitute(values)
