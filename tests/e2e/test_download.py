"""GET /record through nginx: the link add_record returns downloads, seeks and stays small in memory."""

import hashlib
import os
import socket
import threading

import httpx2
import pytest
from sqlalchemy import Engine

from common.config import Settings
from common.storage.backend import Backend
from devstack.seed import seed_record
from tests.support.audio import Wav, durations_match, probe_mp3
from tests.support.problems import assert_problem
from tests.support.stacks import Stack

# Bytes are touched here: every test runs on a stack of each backend.
pytestmark = pytest.mark.every_backend

MEMORY_GROWTH_LIMIT = 30 * 1024 * 1024


def function_base(stack: Stack) -> str:
    """get_record's own address, behind the gateway."""
    return f"http://127.0.0.1:{stack.ports.functions['get_record']}"


@pytest.fixture(scope="module")
def link(gateway_module: httpx2.Client, uploader_via_gateway: tuple[int, str]) -> str:
    user_id, token = uploader_via_gateway
    response = gateway_module.post(
        "/record",
        data={"user_id": str(user_id), "access_token": token},
        files={"file": ("Голос.wav", Wav(duration_s=3, sample_rate=48_000).to_bytes(), "audio/wav")},
    )
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return url


def test_the_link_add_record_returns_downloads_the_mp3(gateway_module: httpx2.Client, link: str) -> None:
    response = gateway_module.get(link)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert "filename*=UTF-8''%D0%93%D0%BE%D0%BB%D0%BE%D1%81.mp3" in response.headers["content-disposition"]
    assert response.headers["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'
    probe = probe_mp3(response.content)
    assert probe.sample_rate == 48_000
    assert durations_match(probe.duration_s, 3, probe.sample_rate)


def test_seeking_and_revalidating_through_the_gateway(gateway_module: httpx2.Client, link: str) -> None:
    whole = gateway_module.get(link)
    size = len(whole.content)
    middle = gateway_module.get(link, headers={"range": f"bytes={size // 2}-"})
    assert middle.status_code == 206
    assert middle.content == whole.content[size // 2 :]
    assert middle.headers["content-range"] == f"bytes {size // 2}-{size - 1}/{size}"
    head = gateway_module.head(link)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(size)
    assert head.content == b""
    cached = gateway_module.get(link, headers={"if-none-match": whole.headers["etag"]})
    assert cached.status_code == 304
    assert cached.content == b""
    past = gateway_module.get(link, headers={"range": f"bytes={size}-"})
    assert_problem(past, 416)
    assert past.headers["content-range"] == f"bytes */{size}"


def test_errors_through_the_gateway(gateway_module: httpx2.Client, link: str) -> None:
    other_user = link.replace("&user=", "&user=9")
    assert_problem(gateway_module.get(other_user), 404)
    assert_problem(gateway_module.get("/record?id=nope&user=1"), 422)
    assert_problem(gateway_module.get("/record"), 422)


@pytest.mark.only_backend("postgres")
def test_a_large_download_keeps_the_function_small(
    stack: Stack, engine: Engine, uploader: tuple[int, str], record_backend: Backend
) -> None:
    data = os.urandom(50 * 1024 * 1024)
    record_id = seed_record(record_backend, uploader[0], data, "long.wav")
    # Straight to the function: through the gateway, only a record's first download reaches it.
    url = f"{function_base(stack)}/record?id={record_id}&user={uploader[0]}"
    get_record = stack.function_processes()["get_record"]
    with httpx2.Client(timeout=60) as client:
        client.get(url, headers={"range": "bytes=0-1023"})  # warm up: pool, imports, buffers
        idle = peak = get_record.memory_info().rss
        streaming = True

        def watch() -> None:
            nonlocal peak
            while streaming:
                peak = max(peak, get_record.memory_info().rss)

        watcher = threading.Thread(target=watch)
        watcher.start()
        digest = hashlib.sha256()
        try:
            with client.stream("GET", url) as response:
                assert response.status_code == 200
                for block in response.iter_bytes():
                    digest.update(block)
        finally:
            streaming = False
            watcher.join()
    assert digest.digest() == hashlib.sha256(data).digest()
    assert peak - idle < MEMORY_GROWTH_LIMIT, f"grew {(peak - idle) / 2**20:.1f} MiB"


@pytest.mark.only_backend("postgres")
def test_a_client_leaving_mid_download_leaks_nothing(
    stack: Stack, engine: Engine, uploader: tuple[int, str], record_backend: Backend
) -> None:
    data = os.urandom(20 * 1024 * 1024)
    record_id = seed_record(record_backend, uploader[0], data, "left.wav")
    port = stack.ports.functions["get_record"]  # the gateway would go on reading to fill its cache
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(
                f"GET /record?id={record_id}&user={uploader[0]} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
            )
            assert connection.recv(65_536).startswith(b"HTTP/1.1 200")
        # closed after the first bytes: the function stops streaming and returns its connections
    # No connection leaks: after three abandoned downloads get_record holds no
    # more than its pool and overflow (DB_POOL_SIZE, twice).
    with engine.connect() as database:
        connections = database.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'get_record'"
        ).scalar_one()
    assert connections <= 2 * Settings().db_pool_size
    with httpx2.Client(timeout=60) as client:  # and it still serves, whole and right
        response = client.get(f"http://127.0.0.1:{port}/record?id={record_id}&user={uploader[0]}")
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    "name", ["\ufdfa" * 251 + ".wav", "😀" * 251 + ".wav", "%" * 255], ids=["nfkd", "emoji", "percent"]
)
def test_a_record_under_the_worst_legal_name_downloads_through_the_gateway(
    gateway_module: httpx2.Client, uploader_via_gateway: tuple[int, str], name: str
) -> None:
    user_id, token = uploader_via_gateway
    response = gateway_module.post(
        "/record",
        data={"user_id": str(user_id), "access_token": token},
        files={"file": (name, Wav(duration_s=0.2).to_bytes(), "audio/wav")},
    )
    assert response.status_code == 201, response.text
    for method in ("GET", "HEAD"):
        download = gateway_module.request(method, response.json()["url"])
        assert download.status_code == 200, download.text
        assert download.headers["content-disposition"].endswith(".mp3")
