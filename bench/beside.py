"""The service beside the simplest implementation (bench/baseline.py), row by row, from one run's results.

Each row says what the service measured, what the baseline did, whether the
row's own target is met, and whether the service is behind the baseline; the
benchmark's check fails on any row where it is behind (`python -m bench` exits 1).
"""

from dataclasses import dataclass

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
