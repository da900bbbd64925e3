"""The service beside the simplest implementation (bench/baseline.py), row by row, from one run's results.

Each row says what the service measured, what the baseline did, whether the
row's own target is met, and whether the service is behind the baseline; the
benchmark's check fails on any row where it is behind (`python -m bench` exits 1).
"""

import math
from dataclasses import dataclass
from typing import Any

from bench.results import Results
from bench.targets import JUDGED_UPLOAD_SECONDS, TARGETS


@dataclass(frozen=True)
class Row:
    name: str
    service: float
    baseline: float
    unit: str
    higher_is_better: bool
    target: str
    target_met: bool

    @property
    def behind(self) -> bool:
        return self.service < self.baseline if self.higher_is_better else self.service > self.baseline


def rows(results: Results) -> list[Row]:
    found: list[Row] = []
    small = results.download["small"]
    cached, revalidation, plain = small["cached_revalidated"], small["function_304"], small["baseline"]
    small_target = TARGETS["cached_small_download"]
    found.append(
        Row(
            f"cached {small['size_kb']} kB download, req/s (p99 {cached['p99_ms']} ms)",
            cached["requests_per_s"],
            plain["requests_per_s"],
            "req/s",
            True,
            f"{small_target.wording}; get_record's own 304: {revalidation['requests_per_s']} req/s",
            small_target.met(cached["requests_per_s"] / revalidation["requests_per_s"])
            and cached["requests_per_s"] >= 2 * plain["requests_per_s"]
            and TARGETS["busy_p99_ms"].met(cached["p99_ms"]),
        )
    )
    upload_target = TARGETS["upload_ratio"]
    for upload in (judged for judged in results.uploads if judged["wav_seconds"] >= JUDGED_UPLOAD_SECONDS):
        found.append(
            Row(
                f"upload of a {upload['wav_seconds']} s WAV ÷ ffmpeg alone",
                upload["ratio"],
                upload["baseline_ratio"],
                "×",
                False,
                upload_target.wording,
                upload_target.met(upload["ratio"]),
            )
        )
    if paced := results.paced_upload:
        paced_target = TARGETS["paced_answer_s"]
        found.append(
            Row(
                f"{paced['wav_seconds']} s WAV sent at {paced['rate']}B/s: answer after its last byte, s",
                paced["answer_after_last_byte_s"],
                paced["baseline_answer_after_last_byte_s"],
                "s",
                False,
                paced_target.wording,
                paced_target.met(paced["answer_after_last_byte_s"]),
            )
        )
    listing = results.owner["list"]
    list_target, middle_target = TARGETS["list_rate"], TARGETS["middle_page_ratio"]
    first, middle = listing["first page"]["requests_per_s"], listing["middle page"]["requests_per_s"]
    found += [
        Row(
            "list, first page of 20, req/s",
            first,
            listing["baseline first page"]["requests_per_s"],
            "req/s",
            True,
            list_target.wording,
            list_target.met(first),
        ),
        Row(
            f"list, the page after the middle of {results.owner['records']:,}, req/s",
            middle,
            listing["baseline middle page"]["requests_per_s"],
            "req/s",
            True,
            middle_target.wording,
            middle_target.met(middle / first),
        ),
    ]
    download, first_target = results.download, TARGETS["first_download_ratio"]
    found.append(
        Row(
            f"first download of {download['size_mb']} MB, MB/s (from disk: {download['nginx_from_disk_mb_per_s']})",
            download["first_mb_per_s"],
            download["baseline_mb_per_s"],
            "MB/s",
            True,
            first_target.wording,
            first_target.met(download["first_ratio"]),
        )
    )
    register = {rate["target"]: rate["requests_per_s"] for rate in results.register}
    found.append(
        Row(
            "POST /register, req/s",
            register["gateway (nginx)"],
            register["baseline"],
            "req/s",
            True,
            TARGETS["register_4x_high"].wording,
            TARGETS["register_4x_high"].met(register["gateway (nginx)"]),
        )
    )
    found += link_rows(results)
    functions = {name: lean for name, lean in results.lean.items() if name != "baseline"}
    for key, wording, unit in (
        ("idle_rss_mb", "idle RSS of the largest function ({}), MB", "MB"),
        ("start_s", "process start → first /healthz 200, slowest function ({}), s", "s"),
    ):
        worst = max(functions, key=lambda name: functions[name][key])
        found.append(
            Row(
                wording.format(worst),
                functions[worst][key],
                results.lean["baseline"][key],
                unit,
                False,
                TARGETS[key].wording,
                all(TARGETS[key].met(lean[key]) for lean in functions.values()),
            )
        )
    return found


def crowd_wording(crowd: dict[str, Any]) -> str:
    link = f"{crowd['rate']}iB/s each" if crowd["rate"] else "loopback speed"
    return f"({crowd['name']}) {crowd['users']} users × {crowd['wav_seconds']} s WAV at {link}"


def number(value: float | None) -> float:
    """A measurement that may be missing (no upload got its record): the worst there is."""
    return math.inf if value is None else value


def crowd_targets_met(crowd: dict[str, Any]) -> bool:
    """Every upload 201; over a limited link, answered soon after its last byte; CPU-bound, shared fairly."""
    service = crowd["service"]
    if service["created"] < crowd["users"]:
        return False
    if crowd["rate"] is None:
        return TARGETS["links_spread"].met(service["total_max_s"] / service["total_median_s"])
    return (
        TARGETS["links_answer_median_s"].met(number(service["answer_after_last_byte_median_s"]))
        and TARGETS["links_answer_p99_s"].met(number(service["answer_after_last_byte_p99_s"]))
        and (crowd["name"] != "c" or TARGETS["busy_p99_ms"].met(number(service["register_p99_ms"])))
    )


def link_rows(results: Results) -> list[Row]:
    """Per crowd: how many got their record, and how soon (over a link) or how fairly (CPU-bound)."""
    found = []
    for crowd in results.real_links:
        service, baseline = crowd["service"], crowd["baseline"]
        wording = crowd_wording(crowd)
        targets = [TARGETS["links_created"].wording]
        if crowd["rate"] is None:
            targets.append(TARGETS["links_spread"].wording)
        else:
            targets += [TARGETS["links_answer_median_s"].wording, TARGETS["links_answer_p99_s"].wording]
        if crowd["name"] == "c":
            targets.append(f"/register {TARGETS['busy_p99_ms'].wording} meanwhile")
        met = crowd_targets_met(crowd)
        found.append(
            Row(f"{wording}: answered 201", service["created"], baseline["created"], "", True, "; ".join(targets), met)
        )
        # CPU-bound, both take the CPU's time: (d) is judged by its spread, in its target, not beside.
        if crowd["rate"] is not None:
            found.append(
                Row(
                    f"{wording}: answer after the last byte (median), s",
                    number(service["answer_after_last_byte_median_s"]),
                    number(baseline["answer_after_last_byte_median_s"]),
                    "s",
                    False,
                    "–",
                    met,
                )
            )
    return found
