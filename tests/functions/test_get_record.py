"""GET and HEAD /record through the get_record function's own app (Starlette's TestClient)."""

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from common.config import Settings
from common.models import User
from common.security import hash_token, new_access_token
from common.storage import CHUNK_BYTES
from devstack.seed import seed_record
from functions.get_record.store import find_records
from tests.support.functions import build_function
from tests.support.problems import assert_problem

DATA = os.urandom(2 * CHUNK_BYTES + 12_345)  # three chunks, the last one short
SIZE = len(DATA)
ETAG = f'"{hashlib.sha256(DATA).hexdigest()}"'


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_function("get_record", settings)) as client:
        yield client


@pytest.fixture(scope="module")
def url(engine: Engine, uploader: tuple[int, str]) -> str:
    record_id = seed_record(engine, uploader[0], DATA, "Интервью «1».wav")
    return f"/record?id={record_id}&user={uploader[0]}"


def test_download_has_every_header_and_the_exact_bytes(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == DATA
    headers = response.headers
    assert headers["content-type"] == "audio/mpeg"
    assert headers["content-length"] == str(SIZE)
    assert headers["content-disposition"].startswith('attachment; filename="')
    assert (
        "filename*=UTF-8''%D0%98%D0%BD%D1%82%D0%B5%D1%80%D0%B2%D1%8C%D1%8E%20%C2%AB1%C2%BB.mp3"
        in (headers["content-disposition"])
    )
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "private"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["etag"] == ETAG
    assert headers["accept-ranges"] == "bytes"
    assert headers["last-modified"].endswith(" GMT")


def test_head_has_the_same_headers_and_no_body(client: TestClient, url: str) -> None:
    get, head = client.get(url), client.head(url)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "content-disposition", "etag", "accept-ranges", "cache-control"):
        assert head.headers[name] == get.headers[name]


@pytest.mark.parametrize(
    "header", [ETAG, f"W/{ETAG}", f'"nope", {ETAG}', "*"], ids=["exact", "weak", "in-list", "star"]
)
def test_if_none_match_is_304_without_a_body(client: TestClient, url: str, header: str) -> None:
    response = client.get(url, headers={"if-none-match": header})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == ETAG
    assert response.headers["cache-control"] == "private"


def test_a_stale_etag_gets_the_full_file(client: TestClient, url: str) -> None:
    response = client.get(url, headers={"if-none-match": '"stale"'})
    assert response.status_code == 200
    assert response.content == DATA


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        (f"bytes={CHUNK_BYTES - 10}-{CHUNK_BYTES + 9}", CHUNK_BYTES - 10, CHUNK_BYTES + 9),
        (f"bytes=100-{2 * CHUNK_BYTES + 100}", 100, 2 * CHUNK_BYTES + 100),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        (f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1),
        (f"bytes={SIZE - 10}-{SIZE + 1000}", SIZE - 10, SIZE - 1),
        (f"bytes={CHUNK_BYTES}-", CHUNK_BYTES, SIZE - 1),
    ],
    ids=["first", "across-a-boundary", "across-three-chunks", "suffix", "last-byte", "past-the-end", "from-chunk-2"],
)
def test_ranges_are_byte_exact(client: TestClient, url: str, header: str, start: int, end: int) -> None:
    response = client.get(url, headers={"range": header})
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["etag"] == ETAG


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"])
def test_unsatisfiable_range_is_416_with_the_size(client: TestClient, url: str, header: str) -> None:
    response = client.get(url, headers={"range": header})
    assert_problem(response, 416)
    assert response.headers["content-range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "bytes=9-1", "lines=1-2"])
def test_a_range_we_do_not_serve_gets_the_whole_file(client: TestClient, url: str, header: str) -> None:
    response = client.get(url, headers={"range": header})
    assert response.status_code == 200
    assert response.content == DATA


def test_if_range_honours_the_range_only_while_it_matches(client: TestClient, url: str) -> None:
    last_modified = client.head(url).headers["last-modified"]
    for validator in (ETAG, last_modified):
        response = client.get(url, headers={"range": "bytes=0-9", "if-range": validator})
        assert response.status_code == 206
        assert response.content == DATA[:10]
    # Dates no datetime holds (a 20-digit year overflows a C long) are stale, not a 500.
    past_any_date = ("Fri, 31 Dec 99999999999999999999 23:59:59 GMT", "Fri, 31 Dec 10000 23:59:59 GMT")
    for stale in ('"changed"', f"W/{ETAG}", "Mon, 01 Jan 2001 00:00:00 GMT", *past_any_date):
        response = client.get(url, headers={"range": "bytes=0-9", "if-range": stale})
        assert response.status_code == 200
        assert response.content == DATA


def test_head_ignores_range(client: TestClient, url: str) -> None:
    response = client.head(url, headers={"range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)


def test_unknown_id_and_another_users_id_are_the_same_404(
    client: TestClient, url: str, engine: Engine, uploader: tuple[int, str]
) -> None:
    record_id = url.split("id=")[1].split("&")[0]

    with Session(engine) as session:
        other = User(name="someone else", token_sha256=hash_token(new_access_token()))
        session.add(other)
        session.commit()
        other_id = other.id
    unknown = client.get(f"/record?id={uuid.uuid4()}&user={uploader[0]}")
    not_theirs = client.get(f"/record?id={record_id}&user={other_id}")
    no_such_user = client.get(f"/record?id={record_id}&user=999999999")
    bodies = [assert_problem(response, 404) for response in (unknown, not_theirs, no_such_user)]
    assert bodies[0] == bodies[1] == bodies[2]
    assert client.head(f"/record?id={uuid.uuid4()}&user={uploader[0]}").status_code == 404


def test_links_looked_up_together_are_each_answered_as_alone(engine: Engine, uploader: tuple[int, str]) -> None:
    """One statement answers a batch of lookups: each link its own record, in order, or None."""
    mine = [seed_record(engine, uploader[0], data, "batch.wav") for data in (b"first", b"second")]
    with Session(engine) as session:
        other = User(name="another owner", token_sha256=hash_token(new_access_token()))
        session.add(other)
        session.commit()
        assert other.id is not None
        other_id = other.id
    found = find_records(
        engine,
        [
            (mine[1], uploader[0]),
            (uuid.uuid4(), uploader[0]),
            (mine[0], other_id),
            (mine[0], uploader[0]),
            (mine[1], uploader[0]),
        ],
    )
    sizes = [None if record is None else record.size_bytes for record in found]
    assert sizes == [len(b"second"), None, None, len(b"first"), len(b"second")]
    assert found[3] is not None
    assert found[3].sha256 == hashlib.sha256(b"first").digest()
    assert found[3].storage == "postgres"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "id"),
        ("?user=1", "id"),
        (f"?id={uuid.uuid4()}", "user"),
        ("?id=not-a-uuid&user=1", "id"),
        (f"?id={uuid.uuid4()}&user=abc", "user"),
        (f"?id={uuid.uuid4()}&user=0", "user"),
        (f"?id={uuid.uuid4()}&user=-3", "user"),
        (f"?id={uuid.uuid4()}&user={2**63}", "user"),
    ],
    ids=["nothing", "no-id", "no-user", "bad-id", "bad-user", "zero-user", "negative-user", "past-bigint-user"],
)
def test_missing_or_malformed_parameters_are_422_naming_them(client: TestClient, query: str, field: str) -> None:
    body = assert_problem(client.get(f"/record{query}"), 422)
    assert field in [error["field"] for error in body["errors"]]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_405_with_allow(client: TestClient, url: str, method: str) -> None:
    response = client.request(method, url)
    assert_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}  # Starlette keeps methods in a set


@pytest.mark.parametrize(
    "respell",
    [
        lambda query: query.upper().replace("ID=", "id=").replace("&USER=", "&user="),
        lambda query: query.replace("id=", "id=urn:uuid:"),
        lambda query: query.replace("user=", "user=00"),
        lambda query: "&".join(reversed(query.split("&"))),
        lambda query: query + "&utm_source=mail",
    ],
    ids=["upper-case-id", "urn", "leading-zeros", "reordered", "extra-parameter"],
)
def test_another_spelling_of_a_link_is_redirected_to_the_one_spelling(
    client: TestClient, url: str, respell: Callable[[str], str]
) -> None:
    path, query = url.split("?")
    for method in ("GET", "HEAD"):
        response = client.request(method, f"{path}?{respell(query)}", follow_redirects=False)
        assert response.status_code == 308
        assert response.headers["location"] == url


@pytest.mark.parametrize("name", ["id", "user"])
def test_a_parameter_given_twice_is_422(client: TestClient, url: str, name: str) -> None:
    value = url.split(f"{name}=")[1].split("&")[0]
    problem = assert_problem(client.get(f"{url}&{name}={value}"), 422)
    assert problem["errors"][0]["field"] == name
