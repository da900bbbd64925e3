"""`make run`: PostgreSQL ready and migrated, then the functions and nginx under honcho, in the foreground.

Ctrl-C or SIGTERM stops every process started here. Once every function's and
the gateway's /healthz answer 200, one line says where everything is:

    stack: ready on http://127.0.0.1:5000; register on :40411, ...; the gateway's /healthz on :40419

Environment: DATABASE_URL, GATEWAY_PORT (5000), GATEWAY_STATUS_PORT (the
gateway's /healthz), <FUNCTION>_PORT for each function (REGISTER_PORT, ...;
free ports unless set: the ready line names them), RECORD_STORAGE=s3 (with
no S3_ENDPOINT_URL, a local SeaweedFS keeps the objects in OBJECT_STORE_DIR,
.data/objects), STACK_DIR (.run: nginx's
prefix; its access log is .run/logs/access.log, its download cache
.run/cache), the gateway's settings (nginx/defaults.env); everything else
reaches the functions unchanged, as compose's environment would.
"""

from __future__ import annotations

import os
import shlex
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import honcho.manager
import httpx2

from devstack.gateway import closed_to_workers, gateway_values, render_nginx
from devstack.objectstore import object_store_settings
from devstack.postgres import database_server, ensure_database, migrate
from devstack.processes import STARTUP_TIMEOUT_S, nginx_command
from devstack.topology import FUNCTIONS, ROOT, Ports, function_command, function_env

# honcho SIGKILLs whatever is still running 5 s after SIGTERM; give uvicorn's
# graceful shutdown (--timeout-graceful-shutdown 20) time to finish uploads.
honcho.manager.KILL_WAIT = 25

READY = "stack: ready on "


def wait_until_ready(ports: Ports) -> None:
    """Print one line once every function and the gateway report healthy."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    pending = {f"http://127.0.0.1:{port}/healthz" for port in [*ports.functions.values(), ports.gateway_status]}
    while pending and time.monotonic() < deadline:
        for url in list(pending):
            try:
                if httpx2.get(url, timeout=2).status_code == 200:
                    pending.discard(url)
            except httpx2.HTTPError:
                pass
        time.sleep(0.2)
    if pending:
        print(f"stack: still unhealthy after {STARTUP_TIMEOUT_S} s: {', '.join(sorted(pending))}", flush=True)
    else:
        print(f"{READY}{ports.describe()}", flush=True)


def run(env: Mapping[str, str]) -> int:
    ports = Ports.from_env(env)
    state_dir = Path(env.get("STACK_DIR") or ROOT / ".run").resolve()
    if os.geteuid() == 0 and (closed := closed_to_workers(state_dir)):
        raise SystemExit(
            f"stack: nginx's workers (www-data) cannot enter {closed}; "
            "set STACK_DIR to a folder they can reach, such as /tmp/records-stack"
        )
    with database_server(env) as database_url, object_store_settings(env) as store_settings:
        env = {**env, "DATABASE_URL": database_url, **store_settings}
        ensure_database(database_url)
        migrate(env)
        nginx_conf = render_nginx(state_dir, gateway_values(ports, env))

        manager = honcho.manager.Manager()
        for name in FUNCTIONS:
            manager.add_process(
                name,
                shlex.join(function_command()),
                env=function_env(env, name, ports.functions[name]),
                cwd=str(ROOT / "functions"),
            )
        manager.add_process("nginx", shlex.join(nginx_command(state_dir, nginx_conf)))
        threading.Thread(target=wait_until_ready, args=(ports,), daemon=True).start()
        manager.loop()
        return int(manager.returncode or 0)
