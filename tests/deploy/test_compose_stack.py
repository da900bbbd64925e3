"""docker compose, for real: the stack built and run as docs/compose.md tells, then scaled, redeployed,
its database restarted, and taken down and up again.

Runs whenever a Docker engine answers (CI starts one with ../shared/docker/engine);
skipped, with the reason, when none does. The stack runs from a copy of the
working tree, under a project name of its own, on free host ports, with a
generated .env whose passwords hold every character that means something in
a URL; `down -v` removes it all, whatever happened. Its timings go to
test-artifacts/compose-timings.json.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import psycopg2
import pytest
import yaml

from devstack.processes import free_port, free_ports
from devstack.topology import FUNCTIONS, ROOT
from tests.support.audio import Wav
from tests.support.auth import bearer

pytestmark = pytest.mark.compose

# What `openssl rand -base64 32` prints, and worse: / # ? @ : % and spaces.
OWNER_PASSWORD = "p#s?s@w:o%rd / x=="
FUNCTIONS_PASSWORD = "a/b+c= #?@:%"
BUILD_TIMEOUT_S = 1200
TIMINGS_FILE = ROOT / "test-artifacts" / "compose-timings.json"


def engine_answers() -> str | None:
    """Why the compose test cannot run here, or None when it can."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    for command in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            result = subprocess.run(command, capture_output=True, timeout=20, check=False)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command)}` did not answer"
        if result.returncode != 0:
            return f"`{' '.join(command)}` failed: {result.stderr.decode(errors='replace').strip()[:200]}"
    return None


def copy_of_the_working_tree(destination: Path) -> None:
    """The files git would see (committed or not, ignored ones left out), as they are on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def docker_environment(**extra: str) -> dict[str, str]:
    """What docker needs from this process's environment, and nothing else: compose would take any
    setting found here (the suite's own ALLOWED_HOSTS, say) over the stack's .env."""
    kept = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "TMPDIR")
    return {name: os.environ[name] for name in kept if name in os.environ} | extra


def single_quoted(value: str) -> str:
    assert "'" not in value
    return f"'{value}'"


@dataclass
class ComposeStack:
    directory: Path
    project: str
    gateway_port: int
    postgres_port: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.gateway_port}"

    def compose(self, *arguments: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", "compose", "-p", self.project, *arguments],
            cwd=self.directory,
            env=docker_environment(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        assert result.returncode == 0, f"docker compose {' '.join(arguments)}:\n{result.stdout}\n{result.stderr}"
        return result

    def timed(self, name: str, *arguments: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        result = self.compose(*arguments, timeout_s=timeout_s)
        self.timings[name] = round(time.monotonic() - started, 1)
        return result

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).stdout.split()

    def inspect(self, container: str) -> dict[str, Any]:
        output = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout
        document: dict[str, Any] = json.loads(output)[0]
        return document

    def logs(self, container: str) -> str:
        result = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=True)
        return result.stdout + result.stderr

    def client(self) -> httpx2.Client:
        return httpx2.Client(base_url=self.base_url, timeout=60)


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    reason = engine_answers()
    if reason:
        pytest.skip(f"no Docker engine answers ({reason}); docs/compose.md, 'Testing it', says how to start one")
    with tempfile.TemporaryDirectory(prefix="records-compose-") as folder:
        directory = Path(folder)
        copy_of_the_working_tree(directory)
        gateway_port, postgres_port = free_ports(2)  # chosen together: never the same one twice
        running = ComposeStack(directory, f"records-test-{secrets.token_hex(4)}", gateway_port, postgres_port)
        (directory / ".env").write_text(
            f"POSTGRES_PASSWORD={single_quoted(OWNER_PASSWORD)}\n"
            f"FUNCTIONS_DB_PASSWORD={single_quoted(FUNCTIONS_PASSWORD)}\n"
            f"GATEWAY_PORT={running.gateway_port}\n"
            f"POSTGRES_PORT={running.postgres_port}\n"
            # The tests post far faster than a person; the rate limit has a test of its own.
            "POST_RATE_LIMIT=1000000r/s\nGET_RATE_LIMIT=1000000r/s\n"
            # Not 127.0.0.1, which the health checks ask for: they must pass whatever this says.
            "ALLOWED_HOSTS=records.example.com,localhost\n"
        )
        try:
            running.timed("build", "build", timeout_s=BUILD_TIMEOUT_S)
            running.timed("up --wait", "up", "--detach", "--wait")
            yield running
        finally:
            subprocess.run(
                ["docker", "compose", "-p", running.project, "down", "--volumes", "--rmi", "local", "--timeout", "5"],
                cwd=directory,
                env=docker_environment(),
                capture_output=True,
                timeout=300,
                check=False,
            )
            TIMINGS_FILE.parent.mkdir(exist_ok=True)
            TIMINGS_FILE.write_text(json.dumps(running.timings, indent=2) + "\n")


@dataclass
class Uploader:
    user_id: int
    token: str

    def form(self, client: httpx2.Client, wav: bytes) -> httpx2.Response:
        return client.post(
            "/record",
            data={"user_id": str(self.user_id), "access_token": self.token},
            files={"file": ("memo.wav", wav, "audio/wav")},
        )

    def raw(self, client: httpx2.Client, wav: bytes) -> httpx2.Response:
        return client.post(
            f"/record?user_id={self.user_id}",
            content=wav,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "audio/wav"},
        )


@pytest.fixture(scope="module")
def uploader(stack: ComposeStack) -> Uploader:
    with stack.client() as client:
        response = client.post("/register", json={"name": "compose"})
    assert response.status_code == 201, response.text
    return Uploader(response.json()["user_id"], response.json()["access_token"])


@pytest.fixture(scope="module")
def stored(stack: ComposeStack, uploader: Uploader) -> tuple[str, bytes]:
    """A record uploaded through the gateway: (its link, its MP3)."""
    with stack.client() as client:
        created = uploader.raw(client, Wav(duration_s=1.5).to_bytes())
        assert created.status_code == 201, created.text
        url = created.json()["url"]
        mp3 = client.get(url).content
    assert len(mp3) == created.json()["size_bytes"]
    return url, mp3


def test_the_service_works_through_the_gateway(stack: ComposeStack, uploader: Uploader) -> None:
    wav = Wav(duration_s=1).to_bytes()
    with stack.client() as client:
        by_form, raw = uploader.form(client, wav), uploader.raw(client, wav)
        assert (by_form.status_code, raw.status_code) == (201, 201), by_form.text + raw.text
        url = raw.json()["url"]
        assert url.startswith(f"http://localhost:{stack.gateway_port}/record?id=")
        whole = client.get(url)
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "audio/mpeg"
        assert len(whole.content) == raw.json()["size_bytes"]
        part = client.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == whole.content[100:200]
        assert "<html" in client.get("/").text.lower()
        assert client.get("/docs/").status_code == 200
        assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        assert client.get("/openapi.yaml").text.startswith("openapi:")
        assert client.get("/healthz").status_code == 404  # the functions' health is not public
        assert client.post("/register", json={"name": "x"}, headers={"Host": "127.0.0.1"}).status_code == 400


def test_the_owner_lists_and_deletes_through_the_gateway(stack: ComposeStack, uploader: Uploader) -> None:
    """Each of list_records and delete_record scaled to two replicas, like any other function."""
    stack.timed("scale list_records=2 delete_record=2", "up", "-d", "--no-deps", "--no-recreate", "--wait",
                "--scale", "list_records=2", "--scale", "delete_record=2", "list_records", "delete_record")  # fmt: skip
    assert len(stack.containers("list_records")) == len(stack.containers("delete_record")) == 2
    owner = bearer(uploader.token)
    with stack.client() as client:
        assert {client.get("/records", headers=owner).status_code for _ in range(20)} == {200}
        created = uploader.raw(client, Wav(duration_s=0.5).to_bytes()).json()
        assert client.get(created["url"]).status_code == 200  # and now in the gateway's cache
        listed = client.get("/records", headers=owner)
        assert listed.status_code == 200
        assert listed.json()["records"][0]["url"] == created["url"]
        assert client.delete(f"/record?id={created['record_id']}", headers=owner).status_code == 204
        assert client.get(created["url"]).status_code == 404
        assert client.delete(f"/record?id={created['record_id']}", headers=owner).status_code == 404


def edit_code(stack: ComposeStack, service: str) -> None:
    """A real change to the function's code, in the stack's own copy of the tree."""
    app = stack.directory / "functions" / service / "app.py"
    app.write_text(app.read_text() + "\n# redeployed by tests/deploy/test_compose_stack.py\n")


def redeploy(stack: ComposeStack, service: str) -> "subprocess.CompletedProcess[str]":
    """scripts/redeploy, as an operator runs it, on the test's project."""
    return subprocess.run(
        ["scripts/redeploy", service],
        cwd=stack.directory,
        env=docker_environment(COMPOSE_OPTIONS=f"-p {stack.project}"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_rotate_token_scales_rotates_and_redeploys_without_a_failed_rotation(stack: ComposeStack) -> None:
    """The sixth function, added by its folder and its roster line: two replicas, then redeployed under load."""
    stack.timed("scale rotate_token=2", "up", "-d", "--no-deps", "--no-recreate", "--wait",
                "--scale", "rotate_token=2", "rotate_token")  # fmt: skip
    assert len(stack.containers("rotate_token")) == 2
    with stack.client() as client:
        token = client.post("/register", json={"name": "rotating"}).json()["access_token"]
        rotated = client.post("/token", headers=bearer(token))
        assert rotated.status_code == 201
        assert client.get("/records", headers=bearer(token)).status_code == 401
        chain = [rotated.json()["access_token"]]
        assert client.get("/records", headers=bearer(chain[-1])).status_code == 200

    def rotate(client: httpx2.Client) -> Outcome:
        response = client.post("/token", headers=bearer(chain[-1]))
        if response.status_code == 201:
            chain.append(response.json()["access_token"])
            return 200
        return f"{response.status_code} POST /token"

    edit_code(stack, "rotate_token")
    with traffic(stack, 1, rotate) as outcomes:  # one client: each rotation presents the last one's token
        redeployed = redeploy(stack, "rotate_token")
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    # A POST is never retried on another replica once sent, so one that meets a replica
    # closing its idle connection may get 503 (Retry-After, nothing rotated). What must
    # never happen is a rotation done but its token lost: the chain would then get 401.
    assert set(outcomes) <= {200, "503 POST /token"}, outcomes
    assert outcomes[200] > 0
    stack.timings["redeploy rotate_token: rotations"] = sum(outcomes.values())


def docker_time(stamp: str) -> datetime:
    """Docker's RFC 3339 time, nanoseconds cut to what datetime holds."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00"))


def test_every_service_reports_healthy(stack: ComposeStack) -> None:
    for service in [*FUNCTIONS, "db", "nginx"]:
        for container in stack.containers(service):
            assert stack.inspect(container)["State"]["Health"]["Status"] == "healthy", service
    # How long each function takes to start, from its container's start to uvicorn's word that it
    # serves (Docker keeps only the last five health checks, so they cannot tell when the first passed).
    for service in FUNCTIONS:
        container = stack.containers(service)[0]
        state = stack.inspect(container)["State"]
        started = docker_time(state["StartedAt"])
        logged = subprocess.run(["docker", "logs", "--timestamps", container], capture_output=True, text=True)
        logs = logged.stdout + logged.stderr
        ready = re.search(r"^(\S+) .*Application startup complete", logs, re.MULTILINE)
        assert ready, logs
        stack.timings[f"{service}: container start → app ready (s)"] = round(
            (docker_time(ready[1]) - started).total_seconds(), 3
        )

    migrate = stack.compose("ps", "--all", "--format", "json", "migrate").stdout
    assert '"ExitCode":0' in migrate.replace(" ", "")


@pytest.mark.parametrize("service", FUNCTIONS)
def test_functions_run_hardened(stack: ComposeStack, service: str) -> None:
    container = stack.containers(service)[0]
    host = stack.inspect(container)["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] > 0
    assert host["PidsLimit"] > 0
    if service == "add_record":  # its MP3s wait on disk: /tmp is a volume of its own, not memory
        mounts = {mount["Destination"]: mount["Type"] for mount in stack.inspect(container)["Mounts"]}
        assert mounts.get("/tmp") == "volume"
        assert "/tmp" not in (host.get("Tmpfs") or {})
    else:
        assert "/tmp" in host["Tmpfs"]
        assert "size=" in host["Tmpfs"]["/tmp"]

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True)

    assert run("id -u").stdout.strip() == "10001"
    assert run("touch /app/written").returncode != 0, "the root filesystem must be read-only"
    assert run("touch /tmp/written && rm /tmp/written").returncode == 0
    assert (run("command -v ffmpeg").returncode == 0) is (service == "add_record")


def test_the_owner_connects_from_the_host_with_its_awkward_password(stack: ComposeStack) -> None:
    """docs/compose.md's psql line, as a client library: the published port, the owner, any password."""
    connection = psycopg2.connect(
        host="127.0.0.1", port=stack.postgres_port, user="records", dbname="records", password=OWNER_PASSWORD
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT usename, application_name FROM pg_stat_activity WHERE application_name = ANY(%s)",
                (list(FUNCTIONS),),
            )
            sessions = cursor.fetchall()
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'records_functions'")
            assert cursor.fetchone() == (False,)
    finally:
        connection.close()
    assert {name for _, name in sessions} == set(FUNCTIONS)
    assert {user for user, _ in sessions} == {"records_functions"}, "the functions connect as their own role"


def test_the_functions_role_may_not_delete_users(stack: ComposeStack) -> None:
    connection = psycopg2.connect(
        host="127.0.0.1",
        port=stack.postgres_port,
        user="records_functions",
        dbname="records",
        password=FUNCTIONS_PASSWORD,
    )
    try:
        with connection.cursor() as cursor, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cursor.execute("DELETE FROM users")
    finally:
        connection.close()


Outcome = int | str
Request = Callable[[httpx2.Client], Outcome]


@contextmanager
def traffic(stack: ComposeStack, clients: int, request: Request) -> Iterator[Counter[Outcome]]:
    """`clients` clients sending `request` over and over while the block runs; what they got, counted."""
    outcomes: Counter[Outcome] = Counter()
    lock = threading.Lock()
    done = threading.Event()

    def loop() -> None:
        with stack.client() as client:
            while not done.is_set():
                try:
                    outcome = request(client)
                except httpx2.HTTPError as exc:
                    outcome = type(exc).__name__
                with lock:
                    outcomes[outcome] += 1

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield outcomes
    finally:
        done.set()
        for thread in threads:
            thread.join()


def test_scaling_add_record_spreads_uploads_without_a_failed_request(stack: ComposeStack, uploader: Uploader) -> None:
    wav = Wav(duration_s=1).to_bytes()

    def replicas_that_stored() -> set[str]:
        return {c for c in stack.containers("add_record") if "stored record=" in stack.logs(c)}

    with traffic(stack, 4, lambda client: uploader.raw(client, wav).status_code) as outcomes:
        stack.timed("scale add_record=3", "up", "-d", "--no-deps", "--no-recreate", "--wait",
                    "--scale", "add_record=3", "add_record")  # fmt: skip
        deadline = time.monotonic() + 60
        while len(replicas_that_stored()) < 3 and time.monotonic() < deadline:
            time.sleep(1)
    stack.timings["scale: uploads"] = sum(outcomes.values())
    stack.timings["scale: failed uploads"] = sum(n for status, n in outcomes.items() if status != 201)
    assert set(outcomes) == {201}, outcomes
    assert len(stack.containers("add_record")) == 3
    assert len(replicas_that_stored()) >= 2


def test_redeploying_get_record_fails_no_download(stack: ComposeStack, stored: tuple[str, bytes]) -> None:
    url, mp3 = stored
    images_before = {service: stack.inspect(stack.containers(service)[0])["Image"] for service in FUNCTIONS}
    old_containers = set(stack.containers("get_record"))
    edit_code(stack, "get_record")
    build = stack.timed("build after editing get_record", "build", "--progress", "plain", "get_record")
    steps = build.stdout + build.stderr
    # Every layer before the function's code comes from the cache: its dependencies are not reinstalled.
    assert "pip install" in steps
    for line in steps.splitlines():
        if "RUN pip install" in line or "apt-get install" in line:
            step = line.split()[0]
            assert f"{step} CACHED" in steps, line

    def download(method: str) -> Request:
        def once(client: httpx2.Client) -> Outcome:
            response = client.request(method, url)
            whole = response.status_code == 200 and (method == "HEAD" or response.content == mp3)
            return 200 if whole else f"{response.status_code} {method}"

        return once

    # HEAD always reaches get_record (the gateway caches GETs only).
    with traffic(stack, 2, download("HEAD")) as heads, traffic(stack, 1, download("GET")) as gets:
        started = time.monotonic()
        redeployed = redeploy(stack, "get_record")
        stack.timings["redeploy get_record"] = round(time.monotonic() - started, 1)
        time.sleep(2)  # and a little traffic after it
    outcomes = heads + gets
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    stack.timings["redeploy: downloads"] = sum(outcomes.values())
    stack.timings["redeploy: failed downloads"] = sum(n for status, n in outcomes.items() if status != 200)
    assert set(outcomes) == {200}, outcomes
    assert not old_containers & set(stack.containers("get_record")), "every old container was replaced"
    images_after = {service: stack.inspect(stack.containers(service)[0])["Image"] for service in FUNCTIONS}
    assert images_after["get_record"] != images_before["get_record"]
    assert {s: images_after[s] for s in ("register", "add_record")} == {
        s: images_before[s] for s in ("register", "add_record")
    }


def test_a_database_restart_gives_503_with_retry_after_then_recovers(stack: ComposeStack) -> None:
    started_at = {c: stack.inspect(c)["State"]["StartedAt"] for s in FUNCTIONS for c in stack.containers(s)}

    def register(client: httpx2.Client) -> Outcome:
        response = client.post("/register", json={"name": "restart"})
        if response.status_code == 503 and int(response.headers.get("retry-after", "0")) <= 0:
            return "503 without Retry-After"
        return response.status_code

    with traffic(stack, 2, register) as outcomes:
        time.sleep(1)
        stack.timed("restart db", "restart", "db")
        recovered = False
        deadline = time.monotonic() + 60
        with stack.client() as client:
            while not recovered and time.monotonic() < deadline:
                recovered = client.post("/register", json={"name": "after"}).status_code == 201
                time.sleep(0.2)
    stack.timings["db restart: registrations"] = sum(outcomes.values())
    stack.timings["db restart: 503s"] = outcomes[503]
    assert set(outcomes) <= {201, 503}, outcomes  # every 503 with Retry-After
    assert recovered, "registrations did not recover after the database restarted"
    assert started_at == {c: stack.inspect(c)["State"]["StartedAt"] for c in started_at}, "no function restarted"


PROMETHEUS_IMAGE = "prom/prometheus:v3.5.0"


def test_prometheus_sees_every_function_s_replicas_up(stack: ComposeStack) -> None:
    """The monitoring file: every replica scraped, the alert rules loaded (the images must be here or pullable)."""
    for image in (PROMETHEUS_IMAGE, "prom/node-exporter:v1.9.1"):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode:
            pytest.skip(f"{image} is not on this machine and no registry is reachable to pull it")
    port = free_port()
    (stack.directory / ".env").write_text((stack.directory / ".env").read_text() + f"PROMETHEUS_PORT={port}\n")
    monitored = ("-f", "docker-compose.yml", "-f", "monitoring/prometheus.compose.yaml")
    stack.timed("monitoring up", *monitored, "up", "--detach", "--wait")
    expected = {container for name in FUNCTIONS for container in stack.containers(name)}
    deadline = time.monotonic() + 60
    up: set[str] = set()
    while len(up) < len(expected) and time.monotonic() < deadline:
        targets = httpx2.get(f"http://127.0.0.1:{port}/api/v1/targets").json()["data"]["activeTargets"]
        up = {t["labels"]["instance"] for t in targets if t["labels"]["job"] == "functions" and t["health"] == "up"}
        time.sleep(2)
    assert len(up) == len(expected)
    groups = httpx2.get(f"http://127.0.0.1:{port}/api/v1/rules").json()["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    written = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())["groups"]
    assert loaded == {rule["alert"] for group in written for rule in group["rules"]}


def test_records_survive_down_and_up(stack: ComposeStack, stored: tuple[str, bytes]) -> None:
    url, mp3 = stored
    stack.timed("down", "down", "--timeout", "30")
    # Without the gateway's cache, the download must come from PostgreSQL's volume.
    subprocess.run(["docker", "volume", "rm", f"{stack.project}_record-cache"], capture_output=True, check=True)
    stack.timed("up --wait (again)", "up", "--detach", "--wait")
    with stack.client() as client:
        response = client.get(url)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(mp3).digest()


SEAWEEDFS_IMAGE = "chrislusf/seaweedfs:4.48"
WITH_THE_OBJECT_STORE = ("-f", "docker-compose.yml", "-f", "objectstore/seaweedfs.compose.yaml")


def test_records_move_to_the_object_store_and_survive_down_and_up(
    stack: ComposeStack, uploader: Uploader, stored: tuple[str, bytes]
) -> None:
    """The object store's file: new records go to SeaweedFS, old ones are moved there, all of them served."""
    if subprocess.run(["docker", "image", "inspect", SEAWEEDFS_IMAGE], capture_output=True, check=False).returncode:
        pytest.skip(f"{SEAWEEDFS_IMAGE} is not on this machine and no registry is reachable to pull it")
    old_url, old_mp3 = stored
    env = stack.directory / ".env"
    env.write_text(env.read_text() + f"S3_ACCESS_KEY_ID=records\nS3_SECRET_ACCESS_KEY={secrets.token_hex(24)}\n")
    stack.timed("object store up", *WITH_THE_OBJECT_STORE, "up", "--detach", "--wait")
    with stack.client() as client:
        created = uploader.raw(client, Wav(duration_s=2).to_bytes())
        assert created.status_code == 201, created.text
        new_url, new_mp3 = created.json()["url"], client.get(created.json()["url"]).content
        assert len(new_mp3) == created.json()["size_bytes"]
        assert client.get(old_url).content == old_mp3  # still in PostgreSQL, served beside it

    def storage_of_every_record() -> set[str]:
        query = "SELECT DISTINCT storage FROM records"
        result = stack.compose("exec", "-T", "db", "psql", "-U", "records", "-d", "records", "-Atc", query)
        return set(result.stdout.split())

    assert storage_of_every_record() == {"postgres", "s3"}
    # As the owner (the move updates rows), from the migration's image, on the store's network.
    move = ("python", "-m", "common.storage.move", "--to", "s3")
    moving = stack.timed("move to s3", *WITH_THE_OBJECT_STORE, "run", "--rm", "migrate", *move)
    assert "0 failed" in moving.stdout + moving.stderr
    assert storage_of_every_record() == {"s3"}
    stack.timed("down (object store)", *WITH_THE_OBJECT_STORE, "down", "--timeout", "30")
    # Without the gateway's cache, every download comes from the store's volume.
    subprocess.run(["docker", "volume", "rm", f"{stack.project}_record-cache"], capture_output=True, check=True)
    stack.timed("up --wait (object store, again)", *WITH_THE_OBJECT_STORE, "up", "--detach", "--wait")
    with stack.client() as client:
        for url, mp3 in ((old_url, old_mp3), (new_url, new_mp3)):
            response = client.get(url)
            assert response.status_code == 200
            assert hashlib.sha256(response.content).digest() == hashlib.sha256(mp3).digest()
