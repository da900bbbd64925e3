"""Request ids from the edge to the last log line, each function's metrics, and logs a machine can read."""

import json
import re
import time
from pathlib import Path

import httpx2
import yaml

from common.logs import record_ref
from devstack.topology import FUNCTIONS, ROOT
from tests.support.audio import Wav
from tests.support.problems import assert_problem
from tests.support.stacks import Stack, wait_for

NGINX_ID = re.compile(r"[0-9a-f]{32}")


def upload(gateway: httpx2.Client, user: tuple[int, str], **headers: str) -> httpx2.Response:
    return gateway.post(
        f"/record?user_id={user[0]}",
        content=Wav(duration_s=0.2).to_bytes(),
        headers={"authorization": f"Bearer {user[1]}", "content-type": "audio/wav", **headers},
    )


def test_every_response_carries_a_request_id(gateway: httpx2.Client, uploader_via_gateway: tuple[int, str]) -> None:
    created = upload(gateway, uploader_via_gateway)
    url = created.json()["url"]
    gateway.get(url)  # fills the cache
    answers = {
        "function": created,
        "function's problem": gateway.post("/register", json={}),
        "gateway's problem": gateway.get("/nowhere"),
        "cached download": gateway.get(url),
        "page": gateway.get("/"),
    }
    ids = {name: response.headers.get("x-request-id") for name, response in answers.items()}
    assert all(value and NGINX_ID.fullmatch(value) for value in ids.values()), ids
    assert len(set(ids.values())) == len(ids)
    assert_problem(answers["gateway's problem"], 404)  # its body names the same id


def test_a_well_formed_client_id_is_kept_and_a_forged_one_replaced(gateway: httpx2.Client) -> None:
    kept = gateway.post("/register", json={"name": "traced"}, headers={"x-request-id": "support-ticket-42"})
    assert kept.headers["x-request-id"] == "support-ticket-42"
    for forged in ("x" * 200, "bad id", "a\u00e9b", "<script>"):
        response = gateway.post("/register", json={"name": "forged"}, headers={b"x-request-id": forged.encode()})
        assert NGINX_ID.fullmatch(response.headers["x-request-id"]), forged


def test_the_id_reaches_the_function_s_log_line_and_the_access_log(
    stack: Stack, gateway: httpx2.Client, uploader_via_gateway: tuple[int, str]
) -> None:
    since = stack.access_log.stat().st_size
    created = upload(gateway, uploader_via_gateway, **{"x-request-id": "trace-me-1234"})
    assert created.status_code == 201
    record_id = created.json()["record_id"]
    assert wait_for(lambda: f"[trace-me-1234] stored record={record_ref(record_id)}" in stack.log.read_text())
    assert record_id not in stack.log.read_text()
    assert wait_for(lambda: "id=trace-me-1234" in stack.access_log_since(since))


def metrics(port: int) -> str:
    return httpx2.get(f"http://127.0.0.1:{port}/metrics").text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of metric `name` whose labels include `labels`; 0 when there is none yet."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and all(f'{key}="{value}"' in (match[1] or "") for key, value in labels.items()):
            return float(match[2])
    return 0.0


def test_counters_move_as_requests_are_made(
    stack: Stack, gateway: httpx2.Client, uploader_via_gateway: tuple[int, str]
) -> None:
    ports = stack.ports.functions
    before = {name: metrics(port) for name, port in ports.items()}
    gateway.post("/register", json={"name": "counted"})
    created = upload(gateway, uploader_via_gateway)
    assert_problem(upload(gateway, (uploader_via_gateway[0], "wrong")), 401)
    gateway.get(created.json()["url"], headers={"range": "bytes=0-99"})  # a miss: its first slice, from get_record
    gateway.head(created.json()["url"])
    after = {name: metrics(port) for name, port in ports.items()}

    def grew(function: str, name: str, by: float = 1, **labels: str) -> bool:
        return sample(after[function], name, **labels) - sample(before[function], name, **labels) >= by

    assert grew("register", "records_requests_total", path="/register", method="POST", status_code="201")
    assert grew("register", "records_request_duration_seconds_count", path="/register")
    assert grew("add_record", "records_audio_seconds_converted_total", by=0.19)
    assert grew("add_record", "records_wav_bytes_received_total", by=30_000)
    assert grew("add_record", "records_mp3_bytes_stored_total", by=1000)
    assert grew("add_record", "records_upload_rejections_total", status="401")
    assert grew("add_record", "records_conversion_seconds_count")
    assert sample(after["add_record"], "records_conversions_capacity") > 0
    assert "records_conversions_in_flight 0.0" in after["add_record"]
    assert grew("get_record", "records_downloads_total", kind="ranged")  # the gateway asks for a slice
    assert grew("get_record", "records_downloads_total", kind="head")
    assert grew("get_record", "records_download_bytes_served_total", by=1000)
    for function, text in after.items():
        assert sample(text, "records_db_pool_size", app_name=function) > 0
        assert "records_database_errors_total" in text


def test_metrics_and_health_stay_inside(stack: Stack, gateway: httpx2.Client) -> None:
    assert_problem(gateway.get("/metrics"), 404)
    assert_problem(gateway.get("/stub_status"), 404)
    status = httpx2.get(f"http://127.0.0.1:{stack.ports.gateway_status}/stub_status").text
    assert status.startswith("Active connections:")


def function_lines(log: Path) -> list[str]:
    """What the functions wrote, without honcho's prefix (`12:00:00 register   | `)."""
    return re.findall(r"^\S+ (?:register|add_record|get_record)\s+\| (.*)$", log.read_text(), re.MULTILINE)


def test_json_logs_are_one_object_a_line_with_the_request_id(json_stack: Stack) -> None:
    with httpx2.Client(base_url=json_stack.base_url, timeout=30) as gateway:
        user = gateway.post("/register", json={"name": "json"}).json()
        created = upload(gateway, (user["user_id"], user["access_token"]), **{"x-request-id": "json-trace-7"})
        assert created.status_code == 201
    time.sleep(0.5)
    records = [json.loads(line) for line in function_lines(json_stack.log)]
    assert records, "the functions wrote nothing"
    for record in records:
        assert {"time", "level", "function", "request_id", "logger", "message"} <= record.keys()
    stored = [record for record in records if record.get("record") == record_ref(created.json()["record_id"])]
    assert stored[0]["request_id"] == "json-trace-7"
    assert stored[0]["function"] == "add_record"
    assert user["access_token"] not in json_stack.log.read_text()


def test_the_alert_rules_use_only_metrics_the_functions_serve(stack: Stack) -> None:
    served = "\n".join(metrics(port) for port in stack.ports.functions.values())
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expression in expressions for name in re.findall(r"\brecords_\w+", expression)}
    assert used
    for name in used:
        assert re.search(rf"^{name}(_bucket|_count|_sum)?[{{ ]", served, re.MULTILINE), name
    scrape = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["dns_sd_configs"][0]["names"] == list(FUNCTIONS)
    assert f"UVICORN_PORT={scrape['dns_sd_configs'][0]['port']}" in (ROOT / "functions" / "Dockerfile").read_text()
