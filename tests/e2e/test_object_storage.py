"""RECORD_STORAGE=s3 beside postgres: the same answers, bytes that never pass through Python, and faults.

The modules marked `every_backend` run the same tests on both stacks; these are
what only a store of its own can show: the two gateways compared answer for
answer, the object removed with its record, and the store going away mid-service.
"""

import contextlib
import hashlib
import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import obstore
import pytest
from obstore.store import S3Store
from sqlalchemy import Engine

from common.storage import CHUNK_BYTES
from common.storage.backend import Backend, Backends, PostgresBackend
from common.storage.move import move
from common.storage.objects import PREFIX, object_key, object_store
from devstack.objectstore import ObjectStore, running_object_store, store_ports
from devstack.seed import create_user, seed_record
from tests.support.audio import Wav
from tests.support.auth import bearer
from tests.support.downloads import ETAG, SAME_AS_GET_RECORD, answer
from tests.support.functions import record_count
from tests.support.problems import assert_problem
from tests.support.stacks import UNLIMITED, Stack, running_stack, wait_for


def bucket(store: ObjectStore) -> S3Store:
    return object_store(store.function_settings())


def object_exists(store: ObjectStore, record_id: uuid.UUID | str) -> bool:
    try:
        obstore.head(bucket(store), object_key(uuid.UUID(str(record_id))))
    except FileNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def s3_backend(weed: ObjectStore, engine: Engine) -> Backend:
    return Backends(weed.function_settings(), engine).writing


@pytest.fixture(scope="module")
def twins(engine: Engine, uploader: tuple[int, str], s3_backend: Backend) -> tuple[str, str, bytes]:
    """The same bytes and name as a record of each backend: their query strings, and the bytes."""
    data = os.urandom(3 * CHUNK_BYTES + 1234)
    in_postgres = seed_record(PostgresBackend(engine), uploader[0], data, "twin.wav")
    in_s3 = seed_record(s3_backend, uploader[0], data, "twin.wav")
    return f"id={in_postgres}&user={uploader[0]}", f"id={in_s3}&user={uploader[0]}", data


@pytest.mark.parametrize("headers", SAME_AS_GET_RECORD.values(), ids=SAME_AS_GET_RECORD.keys())
@pytest.mark.parametrize("cached", [False, True], ids=["first", "cached"])
def test_the_s3_gateway_answers_as_the_postgres_gateway_does(
    postgres_stack: Stack, s3_stack: Stack, twins: tuple[str, str, bytes], headers: dict[str, str], cached: bool
) -> None:
    postgres_query, s3_query, data = twins
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    headers = {name: value.replace(ETAG, etag) for name, value in headers.items()}
    with httpx2.Client(timeout=30) as client:
        if cached:
            client.get(f"{postgres_stack.base_url}/record?{postgres_query}")
            client.get(f"{s3_stack.base_url}/record?{s3_query}")
        from_postgres = client.get(f"{postgres_stack.base_url}/record?{postgres_query}", headers=headers)
        from_s3 = client.get(f"{s3_stack.base_url}/record?{s3_query}", headers=headers)
    # The records were stored a moment apart: all else is the same, Last-Modified is each one's own.
    status, s3_headers, body = answer(from_s3)
    assert s3_headers.pop("last-modified", None) is not None or status == 304
    expected_status, postgres_headers, expected_body = answer(from_postgres)
    postgres_headers.pop("last-modified", None)
    assert (status, s3_headers, body) == (expected_status, postgres_headers, expected_body)
    # Nothing of the store's own reaches the client.
    assert not [name for name in from_s3.headers if re.match(r"x-amz-|seaweed-|vary", name, re.IGNORECASE)]


def bytes_get_record_served(stack: Stack) -> float:
    text = httpx2.get(f"http://127.0.0.1:{stack.ports.functions['get_record']}/metrics").text
    [value] = re.findall(r"^records_download_bytes_served_total (\S+)$", text, re.MULTILINE)
    return float(value)


def test_a_download_s_bytes_never_pass_through_get_record(
    s3_stack: Stack, s3_backend: Backend, uploader: tuple[int, str]
) -> None:
    data = os.urandom(20 * 1024 * 1024)
    query = f"id={seed_record(s3_backend, uploader[0], data, 'large.wav')}&user={uploader[0]}"
    before = bytes_get_record_served(s3_stack)
    with httpx2.Client(base_url=s3_stack.base_url, timeout=60) as gateway:
        first = gateway.get(f"/record?{query}")
        seek = gateway.get(f"/record?{query}", headers={"range": "bytes=15000000-15000009"})
    assert hashlib.sha256(first.content).digest() == hashlib.sha256(data).digest()
    assert (seek.status_code, seek.content) == (206, data[15_000_000:15_000_010])
    assert bytes_get_record_served(s3_stack) == before


def test_deleting_a_record_removes_its_object(
    s3_stack: Stack, weed: ObjectStore, engine: Engine, s3_backend: Backend
) -> None:
    user_id, token = create_user(engine, "s3 deleter")
    record_id = seed_record(s3_backend, user_id, os.urandom(1000))
    assert object_exists(weed, record_id)
    with httpx2.Client(base_url=s3_stack.base_url, timeout=30) as gateway:
        assert gateway.delete(f"/record?id={record_id}", headers=bearer(token)).status_code == 204
        assert_problem(gateway.get(f"/record?id={record_id}&user={user_id}"), 404)
    assert not object_exists(weed, record_id)


def test_a_record_moved_while_the_service_runs_downloads_the_same_throughout(
    postgres_stack: Stack, s3_stack: Stack, weed: ObjectStore, engine: Engine, uploader: tuple[int, str]
) -> None:
    """Both stacks serve it from wherever its row says, cached or not, before, after, and back again."""
    data = os.urandom(3 * CHUNK_BYTES + 99)
    record_id = seed_record(PostgresBackend(engine), uploader[0], data, "moving.wav")
    link = f"/record?id={record_id}&user={uploader[0]}"
    stacks = (postgres_stack, s3_stack)

    def downloads() -> set[tuple[int, str | None, bytes]]:
        with httpx2.Client(timeout=30) as client:
            answers = [client.get(f"{stack.base_url}{link}") for stack in stacks]
            answers += [
                client.get(f"{stack.base_url}{link}", headers={"range": "bytes=700000-700009"}) for stack in stacks
            ]
        return {(response.status_code, response.headers.get("etag"), response.content) for response in answers}

    expected = {
        (200, f'"{hashlib.sha256(data).hexdigest()}"', data),
        (206, f'"{hashlib.sha256(data).hexdigest()}"', data[700_000:700_010]),
    }
    assert downloads() == expected
    assert move(engine, bucket(weed), "s3", only=[record_id]).moved == 1
    assert object_exists(weed, record_id)
    assert downloads() == expected  # the gateways' cached slices, revalidated
    with httpx2.Client(timeout=30) as client:  # a slice never cached: fetched from the store
        uncached = client.get(f"{s3_stack.base_url}{link}", headers={"range": "bytes=-10"})
    assert (uncached.status_code, uncached.content) == (206, data[-10:])
    assert move(engine, bucket(weed), "postgres", only=[record_id]).moved == 1
    assert not object_exists(weed, record_id)
    assert downloads() == expected


class StoreThatFails:
    """A SeaweedFS that can be killed and brought back where it was (same ports, same data)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = store_ports()
        self._running: Iterator[ObjectStore] | None = None
        self.store = self.start()

    def start(self) -> ObjectStore:
        self._running = iter(self._context())
        return next(self._running)

    def _context(self) -> Iterator[ObjectStore]:
        with running_object_store(self.data_dir, "records", "faults", "faults-secret", self.ports) as store:
            yield store

    def stop(self) -> None:
        assert self._running is not None
        next(self._running, None)
        self._running = None


@pytest.fixture(scope="module")
def failing_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreThatFails]:
    store = StoreThatFails(tmp_path_factory.mktemp("failing-objects"))
    yield store
    if store._running is not None:
        store.stop()


@pytest.fixture(scope="module")
def fault_stack(database_url: str, failing_store: StoreThatFails) -> Iterator[Stack]:
    with running_stack("records-s3-faults-", database_url, **UNLIMITED, **failing_store.store.settings()) as stack:
        yield stack


def upload(gateway: httpx2.Client, user: tuple[int, str], duration_s: float = 2) -> httpx2.Response:
    return gateway.post(
        f"/record?user_id={user[0]}",
        content=Wav(duration_s=duration_s).to_bytes(),
        headers={**bearer(user[1]), "content-type": "audio/wav"},
    )


def orphans_and_missing(engine: Engine, user_id: int, store: ObjectStore) -> tuple[set[str], set[str]]:
    """Objects no record names, and `user_id`'s records whose object is not in the store."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT id::text, user_id FROM records").all()
    batches = obstore.list(bucket(store), prefix=PREFIX)
    objects = {meta["path"].removeprefix(PREFIX) for batch in batches for meta in batch}
    every_record = {record_id for record_id, _ in rows}
    users_records = {record_id for record_id, owner in rows if owner == user_id}
    return objects - every_record, users_records - objects


def test_the_store_down_is_503_with_retry_after_and_nothing_half_stored(
    fault_stack: Stack, failing_store: StoreThatFails, engine: Engine
) -> None:
    user = create_user(engine, "s3 faults")
    with httpx2.Client(base_url=fault_stack.base_url, timeout=60) as gateway:
        stored = upload(gateway, user)
        assert stored.status_code == 201
        link = stored.json()["url"].removeprefix(fault_stack.base_url)
        before = record_count(engine)
        failing_store.stop()
        try:
            refused = upload(gateway, user)
            assert_problem(refused, 503)
            assert int(refused.headers["retry-after"]) > 0
            assert record_count(engine) == before
            unreachable = gateway.get(link)  # never downloaded, so not in the gateway's cache
            assert_problem(unreachable, 503)
            assert int(unreachable.headers["retry-after"]) > 0
        finally:
            failing_store.start()
        assert upload(gateway, user).status_code == 201
        assert gateway.get(link).status_code == 200
    assert orphans_and_missing(engine, user[0], failing_store.store) == (set(), set())


def test_the_store_killed_mid_upload_is_503_and_leaves_no_row_and_no_object(
    fault_stack: Stack, failing_store: StoreThatFails, engine: Engine
) -> None:
    user = create_user(engine, "s3 store killed")
    before = record_count(engine)
    wav = Wav(duration_s=60).to_bytes()

    def body() -> Iterator[bytes]:
        yield wav[: len(wav) // 2]  # converting by now, its MP3 on its way to the store
        failing_store.stop()
        yield wav[len(wav) // 2 :]

    try:
        with httpx2.Client(base_url=fault_stack.base_url, timeout=60) as gateway:
            response = gateway.post(
                f"/record?user_id={user[0]}",
                content=body(),
                headers={**bearer(user[1]), "content-type": "audio/wav", "content-length": str(len(wav))},
            )
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) > 0
    finally:
        failing_store.start()
    assert record_count(engine) == before
    assert orphans_and_missing(engine, user[0], failing_store.store) == (set(), set())


def test_add_record_killed_mid_upload_leaves_no_row_and_no_object(
    fault_stack: Stack, failing_store: StoreThatFails, engine: Engine
) -> None:
    user = create_user(engine, "s3 killed")
    before = record_count(engine)
    add_record = fault_stack.function_processes()["add_record"]
    wav = Wav(duration_s=120).to_bytes()

    def body() -> Iterator[bytes]:
        yield wav[: len(wav) // 2]  # a good part of the MP3 is in the store's multipart upload by now
        add_record.send_signal(signal.SIGKILL)
        yield wav[len(wav) // 2 :]

    # The gateway answers 503, or is itself stopped first: the stack's supervisor stops
    # every process once one has died. Either way no record may come of it.
    with (
        httpx2.Client(base_url=fault_stack.base_url, timeout=60) as gateway,
        contextlib.suppress(httpx2.TransportError),
    ):
        response = gateway.post(
            f"/record?user_id={user[0]}",
            content=body(),
            headers={**bearer(user[1]), "content-type": "audio/wav", "content-length": str(len(wav))},
        )
        assert response.status_code >= 500
    assert wait_for(lambda: not add_record.is_running())
    assert record_count(engine) == before
    assert orphans_and_missing(engine, user[0], failing_store.store) == (set(), set())
