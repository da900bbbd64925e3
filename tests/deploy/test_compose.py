"""The compose files, checked without a Docker engine (test_compose_stack.py runs them).

The file validates against the Compose Specification's JSON schema; every
Dockerfile passes hadolint; the gateway config, rendered as the nginx image
renders it, passes `nginx -t`; each image's lock satisfies what its code
declares; and the topology's promises (health-gated start, no published
function ports, grace periods, hardening, one command line) are asserted below.
"""

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from common.config import Settings
from devstack.gateway import gateway_defaults, modules_path, render
from devstack.topology import FUNCTIONS, ROOT, function_command

COMPOSE_FILE = ROOT / "docker-compose.yml"
FUNCTIONS_DOCKERFILE = ROOT / "functions" / "Dockerfile"
DOCKERFILES = [FUNCTIONS_DOCKERFILE, ROOT / "nginx" / "Dockerfile"]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def with_defaults(value: str) -> str:
    """Compose's `${VAR:-default}` interpolation, with nothing set: the defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


@pytest.mark.parametrize("path", [COMPOSE_FILE, ROOT / "monitoring" / "prometheus.compose.yaml"], ids=lambda p: p.name)
def test_compose_files_match_the_compose_specification(path: Path) -> None:
    result = subprocess.run(
        [VENV_BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_dockerfile_needs_no_registry_but_its_base_images(dockerfile: Path) -> None:
    """A `# syntax=` line makes BuildKit fetch a frontend image; nothing here needs one."""
    assert not re.search(r"^#\s*syntax\s*=", dockerfile.read_text(), re.MULTILINE | re.IGNORECASE)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [VENV_BIN / "hadolint", "--config", ROOT / ".hadolint.yaml", dockerfile],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_run_the_command_the_local_stack_runs() -> None:
    dockerfile = FUNCTIONS_DOCKERFILE.read_text()
    assert len(re.findall(r"^CMD ", dockerfile, re.MULTILINE)) == 1
    command = function_command()  # what the local stack runs, read from that CMD
    assert command[0] == "uvicorn"
    assert "--proxy-headers" in command
    assert not {"--reload", "--workers"} & set(command)
    assert "UVICORN_APP=${FUNCTION}.app:app" in dockerfile  # the app, as the local stack sets it
    assert "UVICORN_PORT=8000" in dockerfile
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.MULTILINE), "the function must not run as root"


def test_only_add_record_carries_ffmpeg(compose: dict[str, Any]) -> None:
    """System packages come from the roster, through compose's build arguments, into the one Dockerfile."""
    for name in FUNCTIONS:
        arguments = compose["services"][name]["build"]["args"]
        assert arguments["FUNCTION"] == name
        assert ("ffmpeg" in arguments.get("SYSTEM_PACKAGES", "")) is (name == "add_record")
    assert "apt-get install -y --no-install-recommends $SYSTEM_PACKAGES" in FUNCTIONS_DOCKERFILE.read_text()
    assert "ffmpeg" not in re.sub(r"^#.*$", "", FUNCTIONS_DOCKERFILE.read_text(), flags=re.MULTILINE)


def test_a_function_s_code_is_copied_after_everything_shared() -> None:
    """Editing one function's code then rebuilds only its last layers (test_compose_stack.py builds it)."""
    dockerfile = FUNCTIONS_DOCKERFILE.read_text()
    last_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    instructions = re.findall(r"^(RUN|COPY|ENV|USER|WORKDIR|ARG|EXPOSE|CMD)\b(.*)$", last_stage, re.MULTILINE)
    code = [i for i, (_, arguments) in enumerate(instructions) if "functions/${FUNCTION}/*.py" in arguments]
    assert len(code) == 1
    # Nothing after it installs or fetches: at most its modules are compiled, in a blink.
    after = [arguments.strip() for keyword, arguments in instructions[code[0] :] if keyword == "RUN"]
    assert all(arguments.startswith("python -m compileall") for arguments in after), after


def locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """functions/<name>/requirements.lock: package -> (version, hashes)."""
    text = (ROOT / "functions" / name / "requirements.lock").read_text()
    entries = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)", text, re.MULTILINE)
    return {
        package.lower().replace("_", "-"): (version, re.findall(r"sha256:([0-9a-f]{64})", hashes))
        for package, version, hashes in entries
    }


def common_dependencies() -> list[str]:
    dependencies: list[str] = tomllib.loads((ROOT / "common" / "pyproject.toml").read_text())["project"]["dependencies"]
    return dependencies


def function_requirements(name: str) -> list[str]:
    return (ROOT / "functions" / name / "requirements.txt").read_text().split()


def declared(name: str) -> list[Requirement]:
    """common's dependencies, then the function's own."""
    return [Requirement(line) for line in [*common_dependencies(), *function_requirements(name)]]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_image_s_lock_pins_what_it_declares_with_hashes(name: str) -> None:
    """Run scripts/lock after changing a requirement; the image installs with --require-hashes."""
    lock = locked(name)
    lines = (ROOT / "functions" / name / "requirements.lock").read_text().splitlines()
    assert len(lock) == sum(1 for line in lines if re.match(r"^[A-Za-z0-9._-]+==", line)), "every pin has hashes"
    for requirement in declared(name):
        package = requirement.name.lower().replace("_", "-")
        assert package in lock, f"{package} is declared but not locked: run scripts/lock"
        assert requirement.specifier.contains(lock[package][0]), f"{package}=={lock[package][0]} vs {requirement}"


def test_python_multipart_is_only_in_the_image_that_parses_forms() -> None:
    assert [name for name in FUNCTIONS if "python-multipart" in locked(name)] == ["add_record"]


#: Run by the image's CMD rather than imported: uvicorn, and the extras it picks up by itself.
SERVER = {"uvicorn", "uvloop", "httptools"}


def imported_distributions(folder: Path) -> set[str]:
    """The installed distributions whose modules the code under `folder` imports."""
    modules: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    providers = importlib.metadata.packages_distributions()
    first_party = {"common", "functions"}
    return {normalized(name) for module in modules - first_party for name in providers.get(module, [])}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_image_declares_what_its_code_imports_and_no_more(name: str) -> None:
    common = {normalized(Requirement(line).name) for line in common_dependencies()}
    own = {normalized(Requirement(line).name) for line in function_requirements(name)}
    code = imported_distributions(ROOT / "functions" / name)
    assert code <= common | own, f"{name} imports {code - common - own} without declaring them"
    assert own - SERVER <= code, f"{name} declares {own - SERVER - code} but never imports them"
    assert imported_distributions(ROOT / "common") <= common, "common imports what its pyproject.toml does not declare"


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match[1])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functions_start_healthy_after_migrations_and_stay_private(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["build"]["context"] == "."
    assert service["build"]["dockerfile"] == "functions/Dockerfile"
    assert service["build"]["args"]["FUNCTION"] == name
    assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "container_name" not in service, "a fixed name would forbid --scale"
    assert "ports" not in service, "only the gateway is published"
    assert service["restart"] == "unless-stopped"
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
    graceful = function_command()[function_command().index("--timeout-graceful-shutdown") + 1]
    assert seconds(service["stop_grace_period"]) > int(graceful)


def test_only_the_gateway_and_the_functions_share_the_functions_network(compose: dict[str, Any]) -> None:
    """The functions trust X-Forwarded-* from any peer there (functions/Dockerfile), so no one else may be one
    but the monitoring file's scrapers, which send none."""
    monitoring = yaml.safe_load((ROOT / "monitoring" / "prometheus.compose.yaml").read_text())
    services = {**compose["services"], **monitoring["services"]}
    on_it = {name for name, service in services.items() if "functions" in service.get("networks", [])}
    assert on_it == {"nginx", *FUNCTIONS, "prometheus", "record-cache-disk"}
    assert compose["networks"]["functions"]["internal"] is True
    assert "database" not in compose["services"]["nginx"]["networks"]


@pytest.mark.parametrize("name", [*FUNCTIONS, "migrate"])
def test_python_containers_are_hardened(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    if name == "add_record":  # compose merges `<<: [*add_record, *function]` first-wins; PyYAML last-wins
        service = {**service, **compose["x-add_record"]}
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "cap_add" not in service
    assert "no-new-privileges:true" in service["security_opt"]
    if name == "add_record":  # its MP3s wait on disk, in a volume of its own (not in its memory)
        assert service["tmpfs"] == []
        assert service["volumes"] == [{"type": "volume", "target": "/tmp"}]
    elif name != "migrate":
        assert re.fullmatch(r"/tmp:size=\d+m", service["tmpfs"][0])
    if name != "migrate":
        assert service["mem_limit"]
        assert service["pids_limit"] > 0


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
    assert migrate["command"] == ["python", "-m", "common.provision"]
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


def test_no_secret_is_committed(compose: dict[str, Any]) -> None:
    assert not (ROOT / ".env").exists() or ".env" in (ROOT / ".gitignore").read_text().split()
    assert "POSTGRES_PASSWORD=change-me" in (ROOT / ".env.example").read_text()
    environments = [compose["x-function"]["environment"]] + [
        service.get("environment", {}) for service in compose["services"].values()
    ]
    passwords = {value for environment in environments for key, value in environment.items() if "PASSWORD" in key}
    assert passwords == {"${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}",
                         "${FUNCTIONS_DB_PASSWORD:?set FUNCTIONS_DB_PASSWORD in .env}"}  # fmt: skip


def nginx_version() -> tuple[int, ...]:
    output = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=True).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output)
    assert match
    return tuple(map(int, match.groups()))


def image_main_config() -> str:
    """nginx.conf as nginx/Dockerfile renders it, but for the workers' user (this machine has no `nginx`)."""
    dockerfile = (ROOT / "nginx" / "Dockerfile").read_text()
    match = re.search(r'WORKER_USER_LINE="([^"]*)" PID_FILE=(\S+) TEMP_DIR=(\S+)', dockerfile)
    assert match, "nginx/Dockerfile no longer renders nginx.conf.template"
    assert match[1] == "user nginx;"
    values = {"WORKER_USER_LINE": "", "PID_FILE": "nginx.pid", "TEMP_DIR": match[3]}
    return render((ROOT / "nginx" / "nginx.conf.template").read_text(), values)


def test_container_gateway_config_passes_nginx_t(compose: dict[str, Any], tmp_path: Path) -> None:
    """Render the template with compose's values into an image-like prefix and let nginx judge it."""
    values = {key: with_defaults(str(value)) for key, value in compose["services"]["nginx"]["environment"].items()}
    # Left empty by compose, the image's 18-defaults.envsh gives them nginx/defaults.env's values.
    values |= {key: default for key, default in gateway_defaults().items() if not values[key]}
    if nginx_version() < (1, 27, 3):
        # This machine's nginx predates upstream `resolve`; the image's (1.28) has it. Check the rest.
        values = {key: value.removesuffix(" resolve") for key, value in values.items()}
    (tmp_path / "conf.d").mkdir()
    for template in (ROOT / "nginx" / "templates").glob("*.template"):  # as the image's entrypoint does
        (tmp_path / "conf.d" / template.stem).write_text(render(template.read_text(), values))
    shutil.copy(ROOT / "nginx" / "docker" / "resolver.conf", tmp_path / "conf.d" / "resolver.conf")
    shutil.copytree(ROOT / "nginx" / "includes", tmp_path / "includes")
    (tmp_path / "nginx.conf").write_text(image_main_config())
    if (modules := modules_path()) is not None:  # where this machine's nginx loads its stream module from
        (tmp_path / "modules").symlink_to(modules)
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


def test_every_service_s_log_is_rotated(compose: dict[str, Any]) -> None:
    monitoring = yaml.safe_load((ROOT / "monitoring" / "prometheus.compose.yaml").read_text())
    services = compose["services"] | monitoring["services"]
    for name, service in services.items():
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file", name
        assert {"max-size", "max-file"} <= logging.get("options", {}).keys(), name


def test_the_functions_have_no_way_out(compose: dict[str, Any]) -> None:
    """Every network a function (or the migration) is on is internal: no route to the internet."""
    for name in (*FUNCTIONS, "migrate"):
        for network in compose["services"][name]["networks"]:
            assert compose["networks"][network].get("internal") is True, (name, network)


def test_the_stack_at_its_defaults_fits_in_postgresql_s_connections() -> None:
    """Each function twice over (the compose test scales them so) within the 97 of 100 clients get."""
    assert 2 * len(FUNCTIONS) * 2 * Settings().db_pool_size + 1 <= 100 - 3
