"""GET /records through the list_records function's own app: every status, and paging that holds still."""

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, delete
from sqlmodel import Session, col
from starlette.testclient import TestClient

from common.config import Settings
from common.models import Record
from common.security import hash_token
from devstack.seed import create_user, seed_record
from functions.list_records.app import DEFAULT_LIMIT, MAX_LIMIT
from functions.list_records.cursor import Position
from functions.list_records.store import owners_pages
from tests.support.auth import bearer
from tests.support.functions import build_function, build_without_database
from tests.support.problems import assert_problem


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_function("list_records", settings)) as client:
        yield client


@pytest.fixture
def owner(engine: Engine) -> tuple[int, str]:
    """A user of their own, so that counts are exact."""
    return create_user(engine, "lister")


def seed(engine: Engine, user_id: int, count: int) -> list[uuid.UUID]:
    return [seed_record(engine, user_id, os.urandom(100), f"take {n}.wav") for n in range(count)]


def all_pages(client: TestClient, token: str, limit: int) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = client.get("/records", params=params, headers=bearer(token))
        assert page.status_code == 200, page.text
        listed += page.json()["records"]
        cursor = page.json()["next"]
        if cursor is None:
            return listed


def test_a_new_user_has_no_records(client: TestClient, owner: tuple[int, str]) -> None:
    response = client.get("/records", headers=bearer(owner[1]))
    assert response.status_code == 200
    assert response.json() == {"user_id": owner[0], "records": [], "next": None}
    assert response.headers["cache-control"] == "no-store"
    assert "link" not in response.headers


def test_records_are_listed_newest_first_with_everything_a_person_needs(
    client: TestClient, engine: Engine, owner: tuple[int, str]
) -> None:
    ids = seed(engine, owner[0], 3)
    response = client.get("/records", headers=bearer(owner[1]))
    records = response.json()["records"]
    assert [record["record_id"] for record in records] == [str(record_id) for record_id in reversed(ids)]
    newest = records[0]
    assert newest["url"] == f"http://testserver/record?id={ids[-1]}&user={owner[0]}"
    assert newest["original_name"] == "take 2.wav"
    assert newest["size_bytes"] == 100
    assert newest["duration_s"] == 1.0
    assert newest["created_at"].endswith("Z") or "+00:00" in newest["created_at"]


def test_only_the_token_owners_records_are_listed(client: TestClient, engine: Engine, owner: tuple[int, str]) -> None:
    other = create_user(engine, "someone else")
    seed(engine, other[0], 2)
    mine = seed(engine, owner[0], 1)
    listed = client.get("/records", headers=bearer(owner[1])).json()["records"]
    assert [record["record_id"] for record in listed] == [str(mine[0])]


def test_pages_follow_the_cursor_and_the_link_header(
    client: TestClient, engine: Engine, owner: tuple[int, str]
) -> None:
    ids = seed(engine, owner[0], 5)
    first = client.get("/records?limit=2", headers=bearer(owner[1]))
    assert len(first.json()["records"]) == 2
    cursor = first.json()["next"]
    assert first.headers["link"] == f'</records?limit=2&cursor={cursor}>; rel="next"'
    listed = all_pages(client, owner[1], limit=2)
    assert [record["record_id"] for record in listed] == [str(record_id) for record_id in reversed(ids)]


def test_the_default_and_the_largest_page(client: TestClient, engine: Engine, owner: tuple[int, str]) -> None:
    seed(engine, owner[0], DEFAULT_LIMIT + 1)
    assert len(client.get("/records", headers=bearer(owner[1])).json()["records"]) == DEFAULT_LIMIT
    whole = client.get(f"/records?limit={MAX_LIMIT}", headers=bearer(owner[1])).json()
    assert len(whole["records"]) == DEFAULT_LIMIT + 1
    assert whole["next"] is None


def test_paging_skips_and_repeats_nothing_while_records_come_and_go(
    client: TestClient, engine: Engine, owner: tuple[int, str]
) -> None:
    before = seed(engine, owner[0], 40)
    doomed = set(before[5:35:3])  # deleted while the pages are read, some already listed, some not
    added: list[uuid.UUID] = []

    def churn() -> None:
        for record_id in doomed:
            added.extend(seed(engine, owner[0], 1))
            with Session(engine) as session:
                session.execute(delete(Record).where(col(Record.id) == record_id))
                session.commit()

    churner = threading.Thread(target=churn)
    churner.start()
    listed = all_pages(client, owner[1], limit=3)
    churner.join()

    ids = [uuid.UUID(str(record["record_id"])) for record in listed]
    assert len(ids) == len(set(ids)), "a record was listed twice"
    assert set(before) - doomed <= set(ids), "a record that stayed was skipped"
    assert set(ids) <= set(before) | set(added)
    positions = [(record["created_at"], record["record_id"]) for record in listed]
    assert positions == sorted(positions, reverse=True)


def test_pages_asked_together_are_each_the_askers_own(engine: Engine, owner: tuple[int, str]) -> None:
    """One statement answers a batch: each request its owner's page, in order, whatever the others asked."""
    other, empty = create_user(engine, "another lister"), create_user(engine, "nothing yet")
    mine, theirs = seed(engine, owner[0], 5), seed(engine, other[0], 3)
    newest_first = list(reversed(mine))
    [first] = owners_pages(engine, [(hash_token(owner[1]), 2, None)])
    assert first is not None
    pages = owners_pages(
        engine,
        [
            (hash_token(owner[1]), 2, None),
            (hash_token(str(uuid.uuid4())), 20, None),
            (hash_token(other[1]), 20, None),
            (hash_token(owner[1]), 2, first.records[-1].position),
            (hash_token(empty[1]), 20, None),
            (hash_token(owner[1]), 20, first.records[-1].position),
        ],
    )
    summary = [
        None if page is None else (page.user_id, [r.record_id for r in page.records], page.more) for page in pages
    ]
    assert summary == [
        (owner[0], newest_first[:2], True),
        None,
        (other[0], list(reversed(theirs)), False),
        (owner[0], newest_first[2:4], True),
        (empty[0], [], False),
        (owner[0], newest_first[2:], False),
    ]


def test_concurrent_requests_each_get_their_own_answer(client: TestClient, engine: Engine) -> None:
    users = [create_user(engine, f"concurrent {n}") for n in range(4)]
    seeded = {user_id: seed(engine, user_id, n + 1) for n, (user_id, _) in enumerate(users)}
    tokens = [token for _, token in users] + [str(uuid.uuid4())]  # the last is nobody's
    asked = tokens * 4
    answers: list[tuple[int, object] | None] = [None] * len(asked)
    start = threading.Barrier(len(asked))

    def ask(index: int) -> None:
        start.wait()
        response = client.get("/records", headers=bearer(asked[index]))
        answers[index] = (response.status_code, response.json().get("user_id"))

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(len(asked))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [(200, user_id) for user_id, _ in users] + [(401, None)]
    assert answers == expected * 4
    for user_id, token in users:
        listed = client.get("/records", headers=bearer(token)).json()["records"]
        assert [record["record_id"] for record in listed] == [str(record_id) for record_id in reversed(seeded[user_id])]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Bearer {uuid.uuid4()}"},
    ],
    ids=["no-token", "empty-token", "other-scheme", "unknown-token"],
)
def test_without_a_valid_token_it_is_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/records", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer realm="records"'


def test_a_token_in_the_url_is_refused(client: TestClient, owner: tuple[int, str]) -> None:
    assert_problem(client.get(f"/records?access_token={owner[1]}"), 400)


def test_a_foreign_host_is_refused(client: TestClient, owner: tuple[int, str]) -> None:
    # The answer holds links built from the Host.
    assert_problem(client.get("/records", headers=bearer(owner[1]) | {"host": "evil.example"}), 400)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        (f"limit={MAX_LIMIT + 1}", "limit"),
        ("limit=ten", "limit"),
        ("limit=1&limit=2", "limit"),
        ("cursor=not-a-cursor!", "cursor"),
        ("cursor=" + "A" * 65, "cursor"),
        ("cursor=AAAA", "cursor"),
        ("cursor=x&cursor=y", "cursor"),
    ],
)
def test_invalid_parameters_are_422_naming_them(
    client: TestClient, owner: tuple[int, str], query: str, field: str
) -> None:
    body = assert_problem(client.get(f"/records?{query}", headers=bearer(owner[1])), 422)
    assert [error["field"] for error in body["errors"]] == [field]


def test_other_methods_are_405(client: TestClient, owner: tuple[int, str]) -> None:
    assert_problem(client.post("/records", headers=bearer(owner[1])), 405)


def test_a_cursor_keeps_microseconds_and_the_id() -> None:
    position = Position(datetime(2026, 11, 24, 1, 2, 3, 456_789, tzinfo=UTC), uuid.uuid4())
    assert Position.decode(position.encode()) == position


def test_an_unreachable_database_is_503_with_retry_after() -> None:
    with TestClient(build_without_database("list_records")) as client:
        response = client.get("/records", headers=bearer(str(uuid.uuid4())))
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
