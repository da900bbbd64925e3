"""`make bench QUICK=1`: the harness runs end to end and reports every measurement (no timing is judged)."""

import json
import re
import subprocess
import sys
from pathlib import Path

from devstack.topology import FUNCTIONS, ROOT


def test_quick_benchmark_writes_every_section(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    raw = json.loads((tmp_path / "benchmarks.json").read_text())
    assert raw["uploads"][0]["ratio"] > 0
    assert raw["memory"][0]["add_record_growth_mb"] >= 0
    assert {row["target"] for row in raw["register"]} == {"gateway (nginx)", "function direct", "baseline"}
    assert all(row["requests"] > 0 and row["errors"] == 0 for row in raw["register"])
    busy = raw["register_while_converting"]
    assert busy["uploads_completed"] > 0
    assert busy["requests"] > 0
    assert busy["errors"] == 0
    assert busy["gateway_p99_ms"] >= 0  # the gateway logged every one of ab's requests
    download = raw["download"]
    assert min(download["cached_mb_per_s"], download["first_mb_per_s"], download["function_mb_per_s"]) > 0
    # The quick plan downloads each way once; a cached download is revalidated with get_record first.
    assert download["gateway_cache"] == {"MISS": 1, "REVALIDATED": 1}
    for measured in ("cached_revalidated", "function_304", "baseline"):
        assert download["small"][measured]["requests"] > 0
        assert download["small"][measured]["errors"] == 0
    assert download["baseline_mb_per_s"] > 0
    assert raw["uploads"][0]["baseline_ratio"] > 0
    assert raw["paced_upload"]["answer_after_last_byte_s"] >= 0
    # Every function and the baseline started afresh, each answering /healthz.
    assert set(raw["lean"]) == {*FUNCTIONS, "baseline"}
    assert all(lean["start_s"] > 0 and lean["idle_rss_mb"] > 0 for lean in raw["lean"].values())
    owner = raw["owner"]
    assert set(owner["list"]) == {"first page", "middle page", "baseline first page", "baseline middle page"}
    assert all(row["requests"] > 0 and row["errors"] == 0 for row in owner["list"].values())
    assert owner["middle_page_plan"]["index"] == "ix_records_user_id_created_at_id"
    assert owner["delete"]["per_s"] > 0
    # Both backends, each row on each: a second stack kept its records in SeaweedFS.
    objects = raw["object_storage"]
    assert min(objects["upload_ratio"].values()) > 0
    assert min(objects["first_download_mb_per_s"].values()) > 0
    assert min(objects[f"s3_{part}_mb_per_s"] for part in ("store_alone", "store_proxied", "relay_alone")) > 0
    assert all(objects["cached_small"][name]["errors"] == 0 for name in ("postgres", "s3"))
    assert min(rate["per_s"] for rate in objects["delete"].values()) > 0
    report = (tmp_path / "benchmarks.md").read_text()
    headings = ("## Beside the simplest implementation", "## Machine", "## 1.", "## 2.", "## 3.", "## 4.", "## 5.")
    # Crowds over real links: every upload of the smoke run got its record, from both.
    for crowd in raw["real_links"]:
        assert crowd["service"]["created"] == crowd["baseline"]["created"] == crowd["users"]
    largest = max(raw["real_links"], key=lambda crowd: crowd["users"])  # its uploads last long enough to be seen
    assert largest["service"]["memory"]["converting"] > 0
    for heading in (*headings, "## 6.", "## 7.", "## 8.", "## 9.", "## Commands"):
        assert heading in report
    # The commands are written generically: no run's token, port or temporary path.
    commands = report.split("## Commands", 1)[1]
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}", commands)
    assert "127.0.0.1:" not in commands
    assert "/tmp/" not in commands
    assert "X-Amz-Signature" not in commands  # the presigned URL is named, not written
