"""Listing and deleting through the gateway: a deleted record is gone everywhere, at once."""

import concurrent.futures
import os
import socket
from collections.abc import Iterator

import httpx2
import pytest
from sqlalchemy import Engine

from common.storage import CHUNK_BYTES
from common.storage.backend import Backend
from devstack.seed import create_user, seed_record
from tests.support.audio import Wav
from tests.support.auth import bearer
from tests.support.problems import assert_problem
from tests.support.stacks import Stack, wait_for

# Bytes are touched here: every test runs on a stack of each backend.
pytestmark = pytest.mark.every_backend


@pytest.fixture
def owner(engine: Engine) -> tuple[int, str]:
    return create_user(engine, "owner")


def test_upload_list_download_delete_and_the_link_is_dead(gateway: httpx2.Client, owner: tuple[int, str]) -> None:
    user_id, token = owner
    wav = Wav(duration_s=0.5).to_bytes()
    created = gateway.post(
        f"/record?user_id={user_id}", headers=bearer(token), files={"file": ("memo.wav", wav, "audio/wav")}
    ).json()
    listed = gateway.get("/records", headers=bearer(token))
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    [record] = listed.json()["records"]
    assert record["url"] == created["url"]
    assert record["original_name"] == "memo.wav"
    link = created["url"].removeprefix(str(gateway.base_url).rstrip("/"))
    assert gateway.get(link).status_code == 200
    assert gateway.get(link).status_code == 200  # from the cache, revalidated

    deleted = gateway.delete(f"/record?id={created['record_id']}", headers=bearer(token))
    assert deleted.status_code == 204

    assert_problem(gateway.get(link), 404)
    assert_problem(gateway.get(link, headers={"range": "bytes=0-9"}), 404)
    assert gateway.head(link).status_code == 404
    assert_problem(gateway.delete(f"/record?id={created['record_id']}", headers=bearer(token)), 404)
    assert gateway.get("/records", headers=bearer(token)).json()["records"] == []


def test_of_concurrent_deletes_through_the_gateway_exactly_one_is_204(
    stack: Stack, engine: Engine, owner: tuple[int, str], record_backend: Backend
) -> None:
    record_id = seed_record(record_backend, owner[0], os.urandom(1000))
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:

        def delete(_: int) -> int:
            return gateway.delete(f"/record?id={record_id}", headers=bearer(owner[1])).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(delete, range(8)))
    assert sorted(statuses) == [204] + [404] * 7


def small_window() -> httpx2.HTTPTransport:
    """A reader whose socket buffer is fixed at 256 kB: the kernel does not grow it to tens of MB."""
    return httpx2.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)])


def read_into(received: bytearray, chunks: Iterator[bytes]) -> None:
    for chunk in chunks:
        received += chunk


@pytest.mark.only_backend("postgres")
def test_a_download_streaming_when_its_record_is_deleted_is_cut_short_never_passed_off_whole(
    stack: Stack, engine: Engine, owner: tuple[int, str], record_backend: Backend
) -> None:
    """Read slowly from get_record itself, delete, read on: the connection ends before Content-Length."""
    data = os.urandom(160 * CHUNK_BYTES)  # 40 MB: far more than the sockets between us hold
    record_id = seed_record(record_backend, owner[0], data)
    function = f"http://127.0.0.1:{stack.ports.functions['get_record']}"
    received = bytearray()
    with (
        httpx2.Client(timeout=30, transport=small_window()) as client,
        client.stream("GET", f"{function}/record?id={record_id}&user={owner[0]}") as download,
    ):
        assert download.headers["content-length"] == str(len(data))
        chunks = download.iter_raw(64 * 1024)
        received += next(chunks)
        with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
            assert gateway.delete(f"/record?id={record_id}", headers=bearer(owner[1])).status_code == 204
        with pytest.raises(httpx2.RemoteProtocolError):
            read_into(received, chunks)
    assert len(received) < len(data)
    assert received == data[: len(received)]  # what came is a true prefix
    # The function's log reaches the stack's through honcho: soon, not at once.
    assert wait_for(lambda: "was deleted mid-download" in stack.log.read_text())


def test_a_download_sent_from_the_gateway_s_cache_when_its_record_is_deleted_is_cut_short_too(
    stack: Stack, engine: Engine, owner: tuple[int, str], record_backend: Backend
) -> None:
    """Cached whole first, then read slowly through the gateway: the next slice's revalidation finds it gone.

    The record is larger than what the loopback connections can hold while the
    reader pauses: the reader's buffer is fixed (no autotuning), and the
    gateway's own connections hold at most some 36 MB (tcp_rmem's and
    tcp_wmem's maxima here).
    """
    data = os.urandom(256 * CHUNK_BYTES)
    record_id = seed_record(record_backend, owner[0], data)
    link = f"/record?id={record_id}&user={owner[0]}"
    received = bytearray()
    small_window = httpx2.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)])
    with (
        httpx2.Client(base_url=stack.base_url, timeout=30) as gateway,
        httpx2.Client(base_url=stack.base_url, timeout=30, transport=small_window) as reader,
    ):
        assert gateway.get(link).content == data  # every slice is in the cache now
        with reader.stream("GET", link) as download:
            chunks = download.iter_raw(64 * 1024)
            received += next(chunks)
            assert gateway.delete(f"/record?id={record_id}", headers=bearer(owner[1])).status_code == 204
            with pytest.raises(httpx2.RemoteProtocolError):
                read_into(received, chunks)
    assert len(received) < len(data)
    assert received == data[: len(received)]


def test_a_replaced_token_is_refused_everywhere_and_the_new_one_works(
    gateway: httpx2.Client, owner: tuple[int, str]
) -> None:
    """POST /token through the gateway: from its answer on, the old token uploads, lists, deletes, rotates nothing."""
    user_id, old = owner
    wav = Wav(duration_s=0.2).to_bytes()

    def upload(token: str) -> httpx2.Response:
        return gateway.post(f"/record?user_id={user_id}", headers=bearer(token), files={"file": ("a.wav", wav)})

    kept = upload(old).json()
    rotated = gateway.post("/token", headers=bearer(old))
    assert rotated.status_code == 201
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["access_token"]

    assert_problem(upload(old), 401)
    assert_problem(gateway.get("/records", headers=bearer(old)), 401)
    assert_problem(gateway.delete(f"/record?id={kept['record_id']}", headers=bearer(old)), 401)
    assert_problem(gateway.post("/token", headers=bearer(old)), 401)

    assert upload(new).status_code == 201
    assert [r["record_id"] for r in gateway.get("/records", headers=bearer(new)).json()["records"]][-1] == kept[
        "record_id"
    ]
    assert gateway.get(kept["url"].removeprefix(str(gateway.base_url).rstrip("/"))).status_code == 200  # links live on
    assert gateway.delete(f"/record?id={kept['record_id']}", headers=bearer(new)).status_code == 204
