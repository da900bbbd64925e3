"""The load generators and clients the benchmark runs: each run, noted, and its output parsed.

One parser per tool, each a pure function of the tool's output.
"""

import re
import subprocess
from pathlib import Path
from typing import Any

from bench.plan import CONCURRENCY
from bench.results import Results

#: Tags the latency step's requests in the gateway's access log.
LATENCY_USER_AGENT = "records-bench"


def run(command: list[str], results: Results | None = None) -> subprocess.CompletedProcess[str]:
    if results is not None:
        results.note(command)
    return subprocess.run(command, capture_output=True, text=True, check=True)


def first_line(command: list[str]) -> str:
    """The first line a command prints (its version, say), or 'not installed'."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return "not installed"
    return (completed.stdout or completed.stderr).strip().splitlines()[0]


# ---- wrk: throughput ----


def wrk_script(work: Path, name: str, method: str = "GET", body: str | None = None, **headers: str) -> Path:
    """A wrk Lua script that sends `method` with `body` and `headers`."""
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = '{body}'")
    lines += [f'wrk.headers["{name_}"] = "{value}"' for name_, value in headers.items()]
    script = work / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def wrk(url: str, seconds: int, script: Path, results: Results, connections: int = CONCURRENCY) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    return parse_wrk(run(command, results).stdout)


def parse_wrk(output: str) -> dict[str, Any]:
    def latency_ms(percentile: str) -> float:
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)$", output, re.MULTILINE)
        assert match, output
        return round(float(match[1]) * {"us": 0.001, "ms": 1, "s": 1000}[match[2]], 2)

    requests = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert requests, output
    assert rate, output
    return {
        "requests_per_s": round(float(rate[1])),
        "p50_ms": latency_ms("50"),
        "p99_ms": latency_ms("99"),
        "requests": int(requests[1]),
        "errors": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": socket_errors[1] if socket_errors else "none",
    }


# ---- ab: latency ----


def ab(url: str, seconds: int, body: Path, results: Results, connections: int) -> dict[str, Any]:
    """POST `body` with ApacheBench over keep-alive connections for `seconds`.

    ab, not wrk, for latency: under the conversions' load wrk 4.1 reports latencies
    that cannot be (their sum exceeds the run's length on one connection) and
    that the gateway never saw; ab's agree with the gateway's (docs/performance.md).
    """
    command = ["ab", "-k", "-q", "-c", str(connections), "-t", str(seconds), "-n", "100000000"]
    command += ["-H", f"User-Agent: {LATENCY_USER_AGENT}", "-T", "application/json", "-p", str(body), url]
    return parse_ab(run(command, results).stdout)


def parse_ab(output: str) -> dict[str, Any]:
    def number(label: str) -> float:
        match = re.search(rf"^{label}:?\s+([\d.]+)", output, re.MULTILINE)
        assert match, output
        return float(match[1])

    # ab counts a body whose length differs from the first one's as failed; ids and
    # so lengths vary here, so only connection, receive and exception failures count.
    failures = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", output)
    non_2xx = re.search(r"^Non-2xx responses:\s+(\d+)", output, re.MULTILINE)
    return {
        "requests": int(number("Complete requests")),
        "requests_per_s": round(number("Requests per second")),
        "p50_ms": number("  50%"),
        "p99_ms": number("  99%"),
        "errors": sum(map(int, failures.groups() if failures else ())) + (int(non_2xx[1]) if non_2xx else 0),
    }


# ---- curl: one transfer ----

CURL_OUTCOME = "\\n%{http_code} %{time_total} %{speed_download}"


def curl(arguments: list[str], results: Results | None = None) -> tuple[str, int, float, float]:
    """curl `arguments`, its body on stdout: (body, status, seconds, bytes per second)."""
    return parse_curl(run(["curl", "-sS", "-o", "-", "-w", CURL_OUTCOME, *arguments], results).stdout)


def parse_curl(output: str) -> tuple[str, int, float, float]:
    body, _, outcome = output.rpartition("\n")
    status, seconds, speed = outcome.split()
    return body, int(status), float(seconds), float(speed)


def paced_upload_lag_s(base_url: str, user: tuple[int, str], wav: Path, rate: str, results: Results) -> float:
    """Upload `wav` at `rate` bytes a second (curl's --limit-rate): seconds from its last byte to the answer.

    curl's verbose trace stamps both moments: the end of the upload and the status line.
    """
    command = [
        "curl", "-sS", "-v", "--trace-time", "-o", "/dev/null", "--limit-rate", rate,
        "-H", f"Authorization: Bearer {user[1]}", "-H", "Content-Type: audio/wav",
        "--data-binary", f"@{wav}", f"{base_url}/record?user_id={user[0]}",
    ]  # fmt: skip
    trace = run(command, results).stderr
    uploaded = re.search(r"^(\S+) \* (?:We are completely uploaded|upload completely sent off)", trace, re.M)
    # The final status line; curl's Expect: 100-continue gets an interim 100 first.
    answered = re.search(r"^(\S+) < HTTP/1\.1 ([2-5]\d\d)", trace, re.MULTILINE)
    assert uploaded, trace
    assert answered, trace
    if answered[2] != "201":
        raise RuntimeError(f"paced upload answered {answered[2]}")
    return round(clock_s(answered[1]) - clock_s(uploaded[1]), 3)


def clock_s(stamp: str) -> float:
    """Seconds since midnight of curl's --trace-time stamp (HH:MM:SS.ffffff)."""
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def download_mb_per_s(url: str, results: Results) -> float:
    completed = run(["curl", "-sS", "-o", "/dev/null", "-w", CURL_OUTCOME, url], results)
    _, status, _, speed = parse_curl(completed.stdout)
    if status != 200:
        raise RuntimeError(f"download answered {status}")
    return speed / 1e6


# ---- ffmpeg: the inputs, and the floor ----


def make_wav(path: Path, seconds: int, results: Results) -> Path:
    """A 44.1 kHz stereo WAV of tone and noise (noise keeps the encoder honest)."""
    if not path.exists():
        run(
            [
                "ffmpeg", "-nostdin", "-v", "error", "-y",
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
                "-f", "lavfi", "-i", f"anoisesrc=sample_rate=44100:amplitude=0.2:duration={seconds}",
                "-filter_complex", "amerge=inputs=2", "-ac", "2", "-c:a", "pcm_s16le", str(path),
            ],
            results,
        )  # fmt: skip
    return path


def ffmpeg_to_mp3(wav: Path, out: Path, results: Results) -> None:
    """The floor: the same conversion as ffmpeg alone, file to file."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "192k"]
    run([*command, str(out)], results)
