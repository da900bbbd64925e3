"""The gateway's download cache: later downloads are sent from it, and answer as get_record would.

Every cached download is first revalidated with get_record (a 304 from one
indexed lookup), so a deleted record is never served from the cache.
"""

import concurrent.futures
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import Engine, delete
from sqlmodel import Session, col

from common.models import Record
from common.storage import CHUNK_BYTES
from common.storage.backend import Backend
from devstack.seed import seed_record
from tests.support.downloads import ETAG, SAME_AS_GET_RECORD, answer
from tests.support.problems import assert_problem
from tests.support.stacks import Stack, wait_for

# Bytes are touched here: every test runs on a stack of each backend.
pytestmark = pytest.mark.every_backend


@pytest.fixture(scope="module")
def record(engine: Engine, uploader: tuple[int, str], record_backend: Backend) -> tuple[str, bytes]:
    """A record spanning several chunks: its query string and its bytes."""
    data = os.urandom(3 * CHUNK_BYTES + 1234)
    record_id = seed_record(record_backend, uploader[0], data, "cached.wav")
    return f"id={record_id}&user={uploader[0]}", data


def logged_cache_status(stack: Stack, since: int, request_id: str) -> str | None:
    """The cache status of the request logged with `request_id` after byte `since`, once it is written.

    The access log is written a second late, so lines of earlier tests may still
    follow `since`: each request is found by its own id.
    """
    found = re.search(rf"cache=(\S+) .* id={request_id}$", stack.access_log_since(since), re.MULTILINE)
    return found[1] if found else None


def test_the_second_download_comes_from_the_revalidated_cache_and_is_identical(
    stack: Stack, record: tuple[str, bytes]
) -> None:
    query, data = record
    since = stack.access_log.stat().st_size
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
        first = gateway.get(f"/record?{query}", headers={"x-request-id": "first-download"})
        second = gateway.get(f"/record?{query}", headers={"x-request-id": "second-download"})
    assert first.status_code == 200
    assert first.content == data
    assert answer(first) == answer(second)
    assert wait_for(lambda: logged_cache_status(stack, since, "second-download"))
    assert (
        logged_cache_status(stack, since, "first-download"),
        logged_cache_status(stack, since, "second-download"),
    ) == (
        "MISS",
        "REVALIDATED",
    )


def test_a_record_deleted_behind_the_cache_is_404_at_once(
    stack: Stack, engine: Engine, uploader: tuple[int, str], record_backend: Backend
) -> None:
    data = os.urandom(CHUNK_BYTES + 10)
    record_id = seed_record(record_backend, uploader[0], data, "deleted.wav")
    query = f"id={record_id}&user={uploader[0]}"
    with httpx2.Client(base_url=stack.base_url, timeout=10) as gateway:
        assert gateway.get(f"/record?{query}").content == data
        assert gateway.get(f"/record?{query}").content == data  # cached
        with Session(engine) as session:  # as an operator would, behind every function's back
            session.execute(delete(Record).where(col(Record.id) == record_id))
            session.commit()
        assert_problem(gateway.get(f"/record?{query}"), 404)
        assert_problem(gateway.get(f"/record?{query}", headers={"range": "bytes=0-9"}), 404)


@pytest.mark.only_backend("postgres")
@pytest.mark.parametrize("headers", SAME_AS_GET_RECORD.values(), ids=SAME_AS_GET_RECORD.keys())
def test_the_cache_answers_as_get_record_does(stack: Stack, record: tuple[str, bytes], headers: dict[str, str]) -> None:
    query, data = record
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    headers = {name: value.replace(ETAG, etag) for name, value in headers.items()}
    function = f"http://127.0.0.1:{stack.ports.functions['get_record']}"
    with httpx2.Client(timeout=30) as client:
        client.get(f"{stack.base_url}/record?{query}")  # cached now, if it was not
        from_cache = client.get(f"{stack.base_url}/record?{query}", headers=headers)
        from_function = client.get(f"{function}/record?{query}", headers=headers)
    assert answer(from_cache) == answer(from_function)


def test_a_range_past_the_end_is_a_problem_from_the_cache_too(stack: Stack, record: tuple[str, bytes]) -> None:
    query, data = record
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
        gateway.get(f"/record?{query}")
        past = gateway.get(f"/record?{query}", headers={"range": f"bytes={len(data)}-"})
    assert_problem(past, 416)
    assert past.headers["content-range"] == f"bytes */{len(data)}"


def test_a_malformed_range_is_416_at_the_gateway(stack: Stack, record: tuple[str, bytes]) -> None:
    # Where RFC 9110 lets a server choose, nginx refuses a bytes= range it cannot
    # parse; get_record alone would ignore it (README, GET /record).
    query, _ = record
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
        assert_problem(gateway.get(f"/record?{query}", headers={"range": "bytes=nope"}), 416)


def test_head_goes_to_get_record_and_ignores_range(stack: Stack, record: tuple[str, bytes]) -> None:
    query, data = record
    since = stack.access_log.stat().st_size
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
        gateway.get(f"/record?{query}")
        gateway.get(f"/record?{query}", headers={"x-request-id": "head-test-get"})  # in the cache now
        head = gateway.head(f"/record?{query}", headers={"range": "bytes=0-9", "x-request-id": "head-test-head"})
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    assert wait_for(lambda: logged_cache_status(stack, since, "head-test-head"))
    statuses = (logged_cache_status(stack, since, "head-test-get"), logged_cache_status(stack, since, "head-test-head"))
    assert statuses == ("REVALIDATED", "-")


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        (lambda query: query.replace("&user=", "&user=9"), 404),  # another user
        (lambda query: query + "&id=00000000-0000-4000-8000-000000000000", 422),  # a second id
        (lambda query: query.replace("id=", "ID="), 422),  # not the parameter's name
        (lambda query: query.replace("id=", "id=x"), 422),
    ],
    ids=["other-user", "second-id", "upper-case-name", "malformed-id"],
)
def test_only_the_exact_query_a_record_was_cached_for_reaches_it(
    stack: Stack, record: tuple[str, bytes], tamper: Callable[[str], str], status: int
) -> None:
    query, _ = record
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
        gateway.get(f"/record?{query}")
        assert_problem(gateway.get(f"/record?{tamper(query)}"), status)


def test_a_download_is_the_same_whatever_the_host(stack: Stack, record: tuple[str, bytes]) -> None:
    """A download builds no link: get_record and the cache serve it to any Host alike."""
    query, data = record
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
        for host in ("evil.example", "localhost:1", "127.0.0.1"):
            assert gateway.get(f"/record?{query}", headers={"host": host}).content == data


def cache_entries(stack: Stack) -> set[Path]:
    return {path for path in (stack.log.parent / "cache" / "records").rglob("*") if path.is_file()}


def test_a_burst_of_spellings_makes_one_cache_entry(
    stack: Stack, engine: Engine, uploader: tuple[int, str], record_backend: Backend
) -> None:
    record_id = seed_record(record_backend, uploader[0], os.urandom(CHUNK_BYTES + 10), "spelled.wav")
    user = uploader[0]
    canonical = f"id={record_id}&user={user}"
    spellings = [
        f"id={str(record_id).upper()}&user={user}",
        f"id={record_id.hex}&user={user}",
        f"id=urn:uuid:{record_id}&user={user}",
        f"id={record_id}&user=0{user}",
        f"id={record_id}&user=%2B{user}",
        f"user={user}&id={record_id}",
        f"{canonical}&junk=1",
        f"junk=2&{canonical}",
    ]
    before = cache_entries(stack)
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
        for spelling in spellings:
            for host in ("localhost", "x.example", f"127.0.0.1:{stack.ports.gateway}"):
                redirect = gateway.get(f"/record?{spelling}", headers={"host": host, "range": "bytes=0-0"})
                assert redirect.status_code == 308
                assert redirect.headers["location"] == f"/record?{canonical}"
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            downloads = list(pool.map(lambda _: gateway.get(f"/record?{canonical}", follow_redirects=True), range(8)))
    assert all(response.status_code == 200 for response in downloads)
    assert len(cache_entries(stack) - before) == 1


def bytes_get_record_served(stack: Stack) -> float:
    text = httpx2.get(f"http://127.0.0.1:{stack.ports.functions['get_record']}/metrics").text
    [value] = re.findall(r"^records_download_bytes_served_total (\S+)$", text, re.MULTILINE)
    return float(value)


@pytest.mark.only_backend("postgres")
def test_a_range_on_a_miss_reads_the_slice_it_touches_not_the_record(
    stack: Stack, engine: Engine, uploader: tuple[int, str], record_backend: Backend
) -> None:
    """One byte of a 6 MB record not yet cached: get_record sends its 1 MB slice, not 6 MB."""
    data = os.urandom(6 * 1024 * 1024)
    query = f"id={seed_record(record_backend, uploader[0], data, 'big.wav')}&user={uploader[0]}"
    before = bytes_get_record_served(stack)
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
        one_byte = gateway.get(f"/record?{query}", headers={"range": "bytes=3000000-3000000"})
        assert (one_byte.status_code, one_byte.content) == (206, data[3_000_000:3_000_001])
        served = bytes_get_record_served(stack) - before
        assert served <= 1024 * 1024
        whole = gateway.get(f"/record?{query}")  # the rest fills in, slice by slice
    assert whole.content == data
