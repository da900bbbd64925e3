"""The local stack: the compose topology as local processes (`make run`).

PostgreSQL (DATABASE_URL; else 127.0.0.1:5432; else a cluster of our own
under .data/), the database created if missing and migrated, then the five
functions as uvicorn processes, run with their Docker images' own command
lines, and nginx in front, rendered from the same template compose uses.
honcho supervises them: Ctrl-C or SIGTERM stops every process started here.

    python scripts/stack.py

Environment: DATABASE_URL, GATEWAY_PORT (5000), GATEWAY_STATUS_PORT (the
gateway's /healthz), <FUNCTION>_PORT for each function (REGISTER_PORT, ...;
free ports unless set: the ready line names them), STACK_DIR (.run: nginx's prefix; its access log is
.run/logs/access.log, its download cache .run/cache), the gateway's settings
(nginx/defaults.env); everything else reaches the functions unchanged, as
compose's environment would.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import honcho.manager
import httpx2
import psutil
import psycopg2
import psycopg2.extensions
from psycopg2 import sql
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("register", "add_record", "get_record", "list_records", "delete_record")
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/records"
LOCAL_CLUSTER_DIR = ROOT / ".data" / "postgres"
STARTUP_TIMEOUT_S = 60

# honcho SIGKILLs whatever is still running 5 s after SIGTERM; give uvicorn's
# graceful shutdown (--timeout-graceful-shutdown 20) time to finish uploads.
honcho.manager.KILL_WAIT = 25


@dataclass(frozen=True)
class Ports:
    gateway: int
    gateway_status: int
    functions: Mapping[str, int]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        """GATEWAY_PORT, or 5000; every internal port as set, or a free one, so stacks can run side by side."""
        return cls(
            gateway=int(env.get("GATEWAY_PORT") or 5000),
            gateway_status=int(env.get("GATEWAY_STATUS_PORT") or free_port()),
            functions={name: int(env.get(f"{name.upper()}_PORT") or free_port()) for name in FUNCTIONS},
        )

    def describe(self) -> str:
        """The ready line's account of them, which `Ports.described` reads back."""
        functions = ", ".join(f"{name} on :{port}" for name, port in self.functions.items())
        return f"http://127.0.0.1:{self.gateway}; {functions}; the gateway's /healthz on :{self.gateway_status}"

    @classmethod
    def described(cls, line: str) -> Ports:
        gateway = re.search(r"http://127\.0\.0\.1:(\d+);", line)
        status = re.search(r"the gateway's /healthz on :(\d+)", line)
        assert gateway is not None
        assert status is not None
        functions = {name: int(port) for name, port in re.findall(r"(\w+) on :(\d+)", line) if name in FUNCTIONS}
        return cls(int(gateway[1]), int(status[1]), functions)


def function_command() -> list[str]:
    """The CMD of the functions' Dockerfile: local and container processes run the same line.

    It names no app: uvicorn takes it from UVICORN_APP (see `function_env`), as in the image.
    """
    dockerfile = (ROOT / "functions" / "Dockerfile").read_text()
    match = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    if match is None:
        raise SystemExit("functions/Dockerfile has no exec-form CMD")
    command: list[str] = json.loads(match.group(1))
    return command


def gateway_defaults() -> dict[str, str]:
    """nginx/defaults.env: the gateway settings' defaults, which the image applies too."""
    lines = (ROOT / "nginx" / "defaults.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return dict(pairs)


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute ${NAME} like the nginx image's envsubst does, refusing to leave one unset."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template variable ${{{name}}} has no value")
        return values[name]

    return re.sub(r"\$\{([A-Z][A-Z0-9_]*)\}", substitute, template)


def gateway_values(ports: Ports, env: Mapping[str, str]) -> dict[str, str]:
    return {
        # Unset or empty means the default, as in the image.
        **{name: env.get(name) or default for name, default in gateway_defaults().items()},
        "RECORD_CACHE_DIR": "cache/records",  # in the stack's folder, nginx's prefix
        "GATEWAY_LISTEN": f"127.0.0.1:{ports.gateway}",
        "GATEWAY_STATUS_LISTEN": f"127.0.0.1:{ports.gateway_status}",
        # A file in the stack's folder: piping a line per request through
        # honcho cost a tenth of the register throughput.
        "ACCESS_LOG": "logs/access.log",
        "OPENAPI_FILE": str(ROOT / "openapi.yaml"),
        "WEB_ROOT": str(ROOT / "web" / "public"),
        "SWAGGER_UI_DIR": str(ROOT / "web" / "node_modules" / "swagger-ui-dist"),
        **{f"{name.upper()}_UPSTREAM": f"127.0.0.1:{port}" for name, port in ports.functions.items()},
    }


def render_nginx(state_dir: Path, values: Mapping[str, str]) -> Path:
    """Lay out nginx's prefix like /etc/nginx in the image; returns the main config file."""
    nginx_dir = ROOT / "nginx"
    (state_dir / "conf.d").mkdir(parents=True, exist_ok=True)
    gateway = render((nginx_dir / "templates" / "gateway.conf.template").read_text(), values)
    (state_dir / "conf.d" / "gateway.conf").write_text(gateway)
    includes = state_dir / "includes"
    if includes.is_symlink() or includes.exists():
        includes.unlink()
    includes.symlink_to(nginx_dir / "includes")
    # nginx's workers drop root; they must still be able to write request bodies.
    is_root = os.geteuid() == 0
    (state_dir / "logs").mkdir(exist_ok=True)
    for path in [
        *(state_dir / "temp" / temp for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        state_dir / "cache" / "records",
    ]:
        path.mkdir(parents=True, exist_ok=True)
        if is_root:
            shutil.chown(path, user="www-data")
    main = render(
        (nginx_dir / "local" / "nginx.conf.template").read_text(),
        {"WORKER_USER_LINE": "user www-data;" if is_root else "# (not root: workers run as this user)"},
    )
    config = state_dir / "nginx.conf"
    config.write_text(main)
    return config


def closed_to_workers(state_dir: Path) -> Path | None:
    """The first folder down to `state_dir` that others may not enter, if any.

    Run as root, nginx's workers are www-data, and they write the download cache there.
    """
    for folder in [*reversed(state_dir.parents), state_dir]:
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Return once `process`, just started, answers on 127.0.0.1:`port`; RuntimeError if it exits or is late."""
    deadline = time.monotonic() + timeout_s
    while not answers("127.0.0.1", port):
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers on port {port} after {timeout_s} s")
        time.sleep(0.05)


def postgres_binary(name: str) -> str:
    """Debian keeps initdb and pg_ctl off PATH, under /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise SystemExit(f"{name} not found: install PostgreSQL (apt-get install -y postgresql)")
    return str(candidates[-1])


class LocalCluster:
    """A PostgreSQL cluster under .data/, for machines where nothing answers on 5432."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port

    def _run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root; run its tools as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True)

    def start(self) -> None:
        if os.geteuid() == 0:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.chown(self.data_dir.parent, user="postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(postgres_binary("initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir}"
        self._run(
            postgres_binary("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `immediate` is a crash as far as clients can tell."""
        self._run(postgres_binary("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")


@contextmanager
def database_server(env: Mapping[str, str]) -> Iterator[str]:
    """Yield the database URL, starting (and afterwards stopping) a local cluster when needed."""
    url = env.get("DATABASE_URL")
    if url:
        yield url
        return
    parsed = make_url(DEFAULT_DATABASE_URL)
    assert parsed.host is not None
    assert parsed.port is not None
    if answers(parsed.host, parsed.port):
        yield DEFAULT_DATABASE_URL
        return
    print(f"nothing answers on {parsed.host}:{parsed.port}; starting the cluster in {LOCAL_CLUSTER_DIR}", flush=True)
    cluster = LocalCluster(LOCAL_CLUSTER_DIR, parsed.port)
    cluster.start()
    try:
        yield DEFAULT_DATABASE_URL
    finally:
        cluster.stop()


@contextmanager
def server_cursor(url: str) -> Iterator[psycopg2.extensions.cursor]:
    """An autocommit cursor on the server's `postgres` database, for creating and dropping `url`'s."""
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    connection = psycopg2.connect(admin.render_as_string(hide_password=False), connect_timeout=5)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def ensure_database(url: str) -> None:
    """CREATE DATABASE when missing."""
    name = make_url(url).database
    with server_cursor(url) as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name or "")))


@contextmanager
def throwaway_database(env: Mapping[str, str], prefix: str) -> Iterator[str]:
    """A new, migrated database named `<prefix>_<random>` on the stack's server; dropped afterwards."""
    with database_server(env) as server_url:
        name = f"{prefix}_{secrets.token_hex(4)}"
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        ensure_database(url)
        try:
            migrate({**env, "DATABASE_URL": url})
            yield url
        finally:
            with server_cursor(url) as cursor:
                cursor.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate(env: Mapping[str, str]) -> None:
    """Apply migrations once, before any function starts (what compose's `migrate` service does)."""
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=dict(env), check=True)


def function_env(env: Mapping[str, str], name: str, port: int) -> dict[str, str]:
    return {
        **env,
        "UVICORN_APP": f"{name}.app:app",
        "UVICORN_HOST": "127.0.0.1",
        "UVICORN_PORT": str(port),
        "UVICORN_FORWARDED_ALLOW_IPS": "127.0.0.1",
        # The venv's executables (uvicorn, ffmpeg wrappers) first, like the image's PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }


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
        print(f"stack: ready on {ports.describe()}", flush=True)


@dataclass
class Background:
    """A stack started by `start_in_background`: this script as a child process."""

    process: subprocess.Popen[bytes]
    ports: Ports
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def access_log(self) -> Path:
        """The gateway's access log; nginx writes it at least once a second."""
        return self.log.parent / "logs" / "access.log"

    def access_log_since(self, since: int = 0) -> str:
        """The gateway's access log from byte `since` on."""
        with self.access_log.open() as log:
            log.seek(since)
            return log.read()

    def record_cache_statuses(self, since: int = 0) -> list[str]:
        """What the gateway's cache did for each download logged after byte `since` (HIT, MISS, …)."""
        return re.findall(r'"GET /record [^"]*" \d+ .* cache=(\S+)', self.access_log_since(since))

    def request_times_ms(self, user_agent: str, since: int = 0) -> list[float]:
        """How long the gateway took over each request from `user_agent` logged after byte `since`."""
        pattern = rf'" \d+ \d+ ([\d.]+) "{re.escape(user_agent)}"'
        return [float(seconds) * 1000 for seconds in re.findall(pattern, self.access_log_since(since))]

    def function_processes(self) -> dict[str, psutil.Process]:
        """Each function's uvicorn process (not the shell honcho starts it through), by name."""
        found = {}
        for child in psutil.Process(self.process.pid).children(recursive=True):
            app = child.environ().get("UVICORN_APP", "")
            if child.name() == "uvicorn" and app.endswith(".app:app"):  # not the shell honcho runs it in
                found[app.removesuffix(".app:app")] = child
        return found

    def stop(self, timeout_s: float = 40) -> int:
        """SIGTERM, as Ctrl-C or `docker stop` would send; returns the exit status."""
        self.process.terminate()
        return self.process.wait(timeout=timeout_s)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_in_background(state_dir: Path, env: Mapping[str, str]) -> Background:
    """Run the stack on free loopback ports, logging to `state_dir`/stack.log, and wait until it is ready.

    Only the gateway's port is chosen here; the stack picks its internal ones, and says which when ready.
    """
    environment = {**env, "GATEWAY_PORT": str(free_port()), "STACK_DIR": str(state_dir)}
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "stack.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, __file__], cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (ready := re.search(r"^stack: ready on (.*)$", log.read_text(), re.MULTILINE)):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=40)
            raise RuntimeError(f"the stack did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return Background(process, Ports.described(ready[1]), log)


def run(env: Mapping[str, str]) -> int:
    ports = Ports.from_env(env)
    state_dir = Path(env.get("STACK_DIR") or ROOT / ".run").resolve()
    if os.geteuid() == 0 and (closed := closed_to_workers(state_dir)):
        raise SystemExit(
            f"stack: nginx's workers (www-data) cannot enter {closed}; "
            "set STACK_DIR to a folder they can reach, such as /tmp/records-stack"
        )
    with database_server(env) as database_url:
        env = {**env, "DATABASE_URL": database_url}
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
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        manager.add_process("nginx", shlex.join([nginx, "-p", f"{state_dir}/", "-c", str(nginx_conf), "-e", "stderr"]))
        threading.Thread(target=wait_until_ready, args=(ports,), daemon=True).start()
        manager.loop()
        return int(manager.returncode or 0)


if __name__ == "__main__":
    sys.exit(run(dict(os.environ)))
