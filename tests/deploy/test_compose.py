"""The compose path, checked without a Docker engine.

What backs `docker compose up` here: the file validates against the Compose
Specification's JSON schema; every Dockerfile passes hadolint; the gateway
config, rendered as the nginx image renders it, passes `nginx -t`; and the
topology's promises (health-gated start, no published function ports, grace
periods, one command line) are asserted below.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.stack import FUNCTIONS, ROOT, function_command, render

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILES = [ROOT / "functions" / name / "Dockerfile" for name in FUNCTIONS] + [ROOT / "nginx" / "Dockerfile"]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def with_defaults(value: str) -> str:
    """Compose's `${VAR:-default}` interpolation, with nothing set: the defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [VENV_BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [VENV_BIN / "hadolint", "--config", ROOT / ".hadolint.yaml", dockerfile],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", FUNCTIONS)
def test_image_runs_the_command_the_local_stack_runs(name: str) -> None:
    dockerfile = (ROOT / "functions" / name / "Dockerfile").read_text()
    assert len(re.findall(r"^CMD ", dockerfile, re.MULTILINE)) == 1
    command = function_command(name)  # what scripts/stack.py runs, read from that CMD
    assert command[:2] == ["uvicorn", f"{name}.app:app"]
    assert "--proxy-headers" in command
    assert not {"--reload", "--workers"} & set(command)
    assert "UVICORN_PORT=8000" in dockerfile
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.MULTILINE), "the function must not run as root"


def test_only_add_record_carries_ffmpeg() -> None:
    for name in FUNCTIONS:
        has_ffmpeg = "ffmpeg" in (ROOT / "functions" / name / "Dockerfile").read_text().split("FROM", 1)[1]
        assert has_ffmpeg is (name == "add_record")


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match[1])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functions_start_healthy_after_migrations_and_stay_private(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["build"] == {"context": ".", "dockerfile": f"functions/{name}/Dockerfile"}
    assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "container_name" not in service, "a fixed name would forbid --scale"
    assert "ports" not in service, "only the gateway is published"
    assert service["restart"] == "unless-stopped"
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
    graceful = function_command(name)[function_command(name).index("--timeout-graceful-shutdown") + 1]
    assert seconds(service["stop_grace_period"]) > int(graceful)
    gateway_ip = with_defaults(compose["services"]["nginx"]["networks"]["backend"]["ipv4_address"])
    assert with_defaults(service["environment"]["UVICORN_FORWARDED_ALLOW_IPS"]) == gateway_ip


def test_database_keeps_its_data_on_a_named_volume(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    assert "pgdata:/var/lib/postgresql/data" in db["volumes"]
    assert "pgdata" in compose["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")  # required, never a default
    assert any(port.startswith("127.0.0.1:") for port in db["ports"])


def test_migrations_run_once_and_exit(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["alembic", "upgrade", "head"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"


def test_gateway_starts_once_every_function_is_healthy(compose: dict[str, Any]) -> None:
    nginx = compose["services"]["nginx"]
    assert {name: dependency["condition"] for name, dependency in nginx["depends_on"].items()} == dict.fromkeys(
        FUNCTIONS, "service_healthy"
    )
    assert nginx["ports"] == ["${GATEWAY_PORT:-5000}:80"]


def test_gateway_download_cache_lives_on_its_own_volume(compose: dict[str, Any]) -> None:
    nginx = compose["services"]["nginx"]
    cache_dir = nginx["environment"]["RECORD_CACHE_DIR"]
    assert f"record-cache:{cache_dir}" in nginx["volumes"]
    assert "record-cache" in compose["volumes"]


def test_no_secret_is_committed() -> None:
    assert not (ROOT / ".env").exists() or ".env" in (ROOT / ".gitignore").read_text().split()
    assert "POSTGRES_PASSWORD=change-me" in (ROOT / ".env.example").read_text()
    assert "password" not in COMPOSE_FILE.read_text().lower().replace("postgres_password", "")


def nginx_version() -> tuple[int, ...]:
    output = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=True).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output)
    assert match
    return tuple(map(int, match.groups()))


def test_container_gateway_config_passes_nginx_t(compose: dict[str, Any], tmp_path: Path) -> None:
    """Render the template with compose's values into an image-like prefix and let nginx judge it."""
    values = {key: with_defaults(str(value)) for key, value in compose["services"]["nginx"]["environment"].items()}
    if nginx_version() < (1, 27, 3):
        # This machine's nginx predates upstream `resolve`; the image's (1.28) has it. Check the rest.
        values = {key: value.removesuffix(" resolve") for key, value in values.items()}
    (tmp_path / "conf.d").mkdir()
    template = (ROOT / "nginx" / "templates" / "gateway.conf.template").read_text()
    (tmp_path / "conf.d" / "gateway.conf").write_text(render(template, values))
    shutil.copy(ROOT / "nginx" / "docker" / "resolver.conf", tmp_path / "conf.d" / "resolver.conf")
    shutil.copytree(ROOT / "nginx" / "includes", tmp_path / "includes")
    shutil.copy(Path(__file__).parent / "image-nginx.conf", tmp_path / "nginx.conf")
    # Compose's service names resolve inside its network; here, in a private mount namespace,
    # which also has the image's /var/cache/nginx for the download cache.
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost " + " ".join(FUNCTIONS) + "\n")
    check = (
        f"mount --bind {hosts} /etc/hosts && mount -t tmpfs tmpfs /var/cache && mkdir /var/cache/nginx"
        f" && nginx -t -p {tmp_path}/ -c {tmp_path}/nginx.conf -e stderr"
    )
    result = subprocess.run(["unshare", "--mount", "sh", "-c", check], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
