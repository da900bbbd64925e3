"""A token rotated while an upload arrives: the upload stores nothing (issue 32, point 1)."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from common.config import Settings
from devstack.seed import create_user
from tests.support.audio import Wav
from tests.support.functions import build_function, record_count
from tests.support.stacks import Function, serve_function
from tests.support.uploads import RawUpload


@pytest.fixture(scope="module")
def add_record(database_url: str) -> Iterator[Function]:
    with serve_function("add_record") as function:
        yield function


def rotate(settings: Settings, token: str) -> str:
    with TestClient(build_function("rotate_token", settings)) as client:
        response = client.post("/token", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 201
    new_token: str = response.json()["access_token"]
    return new_token


def test_an_upload_whose_token_is_rotated_meanwhile_is_401_and_stores_nothing(
    add_record: Function, settings: Settings, engine: Engine
) -> None:
    user = create_user(engine, "rotating")
    wav = Wav(duration_s=2).to_bytes()
    upload = RawUpload(add_record, user, wav)
    upload.send(wav[: len(wav) // 2])  # authenticated at the first byte, converting
    before = record_count(engine)
    rotate(settings, user[1])
    upload.send(wav[len(wav) // 2 :])
    status, headers = upload.response()
    assert status == 401
    assert headers["www-authenticate"].startswith("bearer")  # RawUpload lowercases what it reads
    assert record_count(engine) == before
