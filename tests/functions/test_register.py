"""POST /register, through the function's own app (Starlette's TestClient)."""

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from common.config import Settings
from common.security import hash_token
from tests.support.functions import build_function, build_without_database
from tests.support.problems import assert_problem

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_function("register", settings)) as client:
        yield client


def stored_user(engine: Engine, user_id: int) -> tuple[str, bytes]:
    with engine.connect() as connection:
        row = connection.execute(text("SELECT name, token_sha256 FROM users WHERE id = :id"), {"id": user_id}).one()
    return row.name, bytes(row.token_sha256)


def test_register_returns_id_and_uuid_token(client: TestClient, engine: Engine) -> None:
    response = client.post("/register", json={"name": "alice"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"user_id", "access_token"}
    assert isinstance(body["user_id"], int)
    assert uuid.UUID(body["access_token"]).version == 4
    name, digest = stored_user(engine, body["user_id"])
    assert name == "alice"
    assert digest == hash_token(body["access_token"])
    assert body["access_token"].encode() not in digest


def test_names_are_trimmed_and_need_not_be_unique(client: TestClient, engine: Engine) -> None:
    first = client.post("/register", json={"name": "  bob\t"}).json()
    second = client.post("/register", json={"name": "bob"}).json()
    assert first["user_id"] != second["user_id"]
    assert first["access_token"] != second["access_token"]
    assert stored_user(engine, first["user_id"])[0] == "bob"


def test_unicode_name_of_exactly_100_characters_is_accepted(client: TestClient, engine: Engine) -> None:
    name = "ё" * 100
    response = client.post("/register", json={"name": name})
    assert response.status_code == 201
    assert stored_user(engine, response.json()["user_id"])[0] == name


def test_content_type_with_charset_and_extra_fields_are_fine(client: TestClient) -> None:
    response = client.post(
        "/register",
        content=b'{"name": "carol", "email": "ignored@example.com"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"name": "x"',
        b"nul",
        b"\xff\xfe",
        b'{"name": "x"} trailing',
        b"[" * 10_000,  # RecursionError in the parser
        b'{"name": ' + b"9" * 5000 + b"}",  # past int's digit limit: ValueError
    ],
    ids=["empty", "open-brace", "unterminated", "bad-literal", "not-utf8", "trailing", "deep", "huge-number"],
)
def test_unparseable_json_is_400(client: TestClient, body: bytes) -> None:
    assert_problem(client.post("/register", content=body, headers=JSON), 400)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 42}, "name"),
        ({"name": None}, "name"),
        ({"name": ["alice"]}, "name"),
        ({"name": "nul\u0000byte"}, "name"),
        ({"name": "line\nbreak"}, "name"),
        (["alice"], "body"),
        ("alice", "body"),
        (None, "body"),
    ],
    ids=[
        "missing", "empty", "blank", "too-long", "number", "null", "list",
        "nul-char", "newline", "array-body", "string-body", "null-body",
    ],
)  # fmt: skip
def test_invalid_payload_is_422_naming_the_field(client: TestClient, payload: object, field: str) -> None:
    response = client.post("/register", content=json.dumps(payload), headers=JSON)
    body = assert_problem(response, 422)
    assert [error["field"] for error in body["errors"]] == [field]
    assert field in body["detail"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}],
    ids=["none", "text", "form"],
)
def test_body_that_is_not_json_is_415(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/register", content=b'{"name": "alice"}', headers=headers)
    assert_problem(response, 415)
    assert response.headers["accept-post"] == "application/json"


def test_oversized_body_is_413_whether_declared_or_streamed(client: TestClient) -> None:
    huge = b'{"name": "' + b"x" * 20_000 + b'"}'
    assert_problem(client.post("/register", content=huge, headers=JSON), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield huge[:10_000]
        yield huge[10_000:]

    assert_problem(client.post("/register", content=chunks(), headers=JSON), 413)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(client: TestClient, method: str) -> None:
    response = client.request(method, "/register")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


def test_unknown_path_is_404(client: TestClient) -> None:
    assert_problem(client.get("/users/1"), 404)


def test_healthz_is_200_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_answers_whatever_host_a_probe_sends(settings: Settings) -> None:
    app = build_function("register", settings, allowed_hosts=("records.example.com",))
    with TestClient(app, base_url="http://127.0.0.1:8000") as probe:
        assert probe.get("/healthz").status_code == 200
        assert_problem(probe.post("/register", json={"name": "alice"}), 400)  # every other path checks the Host


@pytest.fixture(scope="module")
def client_without_database() -> Iterator[TestClient]:
    with TestClient(build_without_database("register")) as client:
        yield client


def test_unreachable_database_is_503_with_retry_after(client_without_database: TestClient) -> None:
    response = client_without_database.post("/register", json={"name": "alice"})
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    health = client_without_database.get("/healthz")
    assert_problem(health, 503)
    assert "retry-after" in health.headers


def test_bad_input_still_gets_its_own_status_without_a_database(client_without_database: TestClient) -> None:
    assert_problem(client_without_database.post("/register", json={}), 422)
