"""`python -m bench [--quick] [--output DIR] [--only STEP,...]`: run the benchmark (see bench/__init__.py)."""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import psutil

import bench
from bench import beside
from bench.contender import register_user, running_baseline
from bench.links import real_links
from bench.objects import object_storage
from bench.plan import QUICK, Plan
from bench.report import render
from bench.results import Results
from bench.steps import STEPS, Bench
from bench.tools import first_line
from common.config import Settings
from common.db import create_db_engine
from devstack.background import start_in_background
from devstack.postgres import throwaway_database
from devstack.topology import ROOT


def machine_info(database_url: str) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    engine = create_db_engine(Settings(database_url=database_url))
    with engine.connect() as connection:
        postgres = str(connection.exec_driver_sql("SHOW server_version").scalar())
    engine.dispose()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ffmpeg": first_line(["ffmpeg", "-version"]),
        "nginx": first_line(["nginx", "-v"]),
        "postgresql": postgres,
        "wrk": first_line(["wrk", "--version"]),
        "ab": first_line(["ab", "-V"]),
        "curl": first_line(["curl", "--version"]),
    }


#: Every step, in the order they run: the object store's before the owner's, whose 100,000 listed
#: rows claim more than MAX_TOTAL_STORAGE_GB (their bytes are left out), after which uploads get 507.
ALL_STEPS = {
    **{name: step for name, step in STEPS.items() if name not in ("owner", "lean")},
    "object_storage": object_storage,
    "real_links": real_links,
    "owner": STEPS["owner"],
    "lean": STEPS["lean"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny inputs, a few seconds: the harness's smoke test")
    parser.add_argument("--output", type=Path, default=ROOT / "docs", help="where benchmarks.md/.json go")
    parser.add_argument("--only", help=f"comma-separated steps to run ({','.join(ALL_STEPS)}); no report")
    arguments = parser.parse_args()
    plan = QUICK if arguments.quick else Plan()
    results = Results()
    # No rate limit here: the point is to find the service's own limits.
    environment = {
        **os.environ,
        "MAX_UPLOAD_MB": "512",
        "LOG_LEVEL": "WARNING",
        "POST_RATE_LIMIT": "1000000r/s",
        "GET_RATE_LIMIT": "1000000r/s",
    }
    with (
        throwaway_database(environment, "records_bench") as database_url,
        tempfile.TemporaryDirectory() as tmp,
        ExitStack() as exits,
    ):
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers (www-data, when run as root) write the stack's download cache here
        stack = start_in_background(work / "stack", {**environment, "DATABASE_URL": database_url})
        try:
            baseline = exits.enter_context(running_baseline(database_url))
            results.machine = machine_info(database_url)
            user = register_user(stack.base_url)
            results.aliases |= {
                str(work): "$WORK",
                stack.base_url: "$GATEWAY",
                baseline.base_url: "$BASELINE",
                baseline.user[1]: "$BASELINE_TOKEN",
                f"user_id={baseline.user[0]}": "user_id=$BASELINE_USER_ID",
                f"http://127.0.0.1:{stack.ports.functions['register']}": "$REGISTER_FUNCTION",
                user[1]: "$TOKEN",
                f"user_id={user[0]}": "user_id=$USER_ID",
                f"user={user[0]}": "user=$USER_ID",
            }
            context = Bench(stack, database_url, user, plan, work, results, baseline, environment)
            for name, step in ALL_STEPS.items():
                if arguments.only and name not in arguments.only.split(","):
                    continue
                started = time.monotonic()
                step(context)
                print(f"bench: {name} done in {time.monotonic() - started:.0f} s", flush=True)
        finally:
            stack.stop()
    if arguments.only:
        measured = {key: value for key, value in asdict(results).items() if key not in ("aliases", "commands")}
        print(json.dumps(measured, indent=2), flush=True)
        return 0
    arguments.output.mkdir(parents=True, exist_ok=True)
    (arguments.output / "benchmarks.json").write_text(json.dumps(asdict(results), indent=2) + "\n")
    (arguments.output / "benchmarks.md").write_text(render(results, plan, arguments.quick))
    print(f"bench: wrote {arguments.output / 'benchmarks.md'}", flush=True)
    behind = [row.name for row in beside.rows(results) if row.behind]
    for name in behind:
        print(f"bench: behind the baseline: {name}", flush=True)
    # A smoke run's tiny inputs measure start-up, not the paths: it judges nothing.
    return 1 if behind and not arguments.quick else 0


sys.exit(main())
