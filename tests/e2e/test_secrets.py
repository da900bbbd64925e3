"""Access tokens and download links never reach a log, and the database keeps only the tokens' digests."""

import time

import httpx2
import pytest
from sqlalchemy import Engine, text

from tests.support.audio import Wav
from tests.support.stacks import Stack


@pytest.mark.parametrize("stack_fixture", ["stack", "json_stack"], ids=["text-logs", "json-logs"])
def test_tokens_and_links_appear_in_no_log_and_tokens_in_no_row(
    request: pytest.FixtureRequest, stack_fixture: str, engine: Engine
) -> None:
    stack: Stack = request.getfixturevalue(stack_fixture)
    with httpx2.Client(base_url=stack.base_url, timeout=30) as gateway:
        check_tokens_stay_secret(stack, gateway, engine)


def check_tokens_stay_secret(stack: Stack, gateway: httpx2.Client, engine: Engine) -> None:
    body = gateway.post("/register", json={"name": "secretive"}).json()
    user_id, token = body["user_id"], body["access_token"]
    wav = Wav(duration_s=0.2).to_bytes()
    form = gateway.post(
        "/record", data={"user_id": str(user_id), "access_token": token}, files={"file": ("a.wav", wav)}
    )
    assert form.status_code == 201
    raw = gateway.post(
        f"/record?user_id={user_id}",
        content=wav,
        headers={"authorization": f"Bearer {token}", "content-type": "audio/wav"},
    )
    assert raw.status_code == 201
    wrong = gateway.post(f"/record?user_id={user_id}&access_token={token}", content=wav)  # refused, and logged
    assert wrong.status_code == 400
    assert gateway.get(form.json()["url"]).status_code == 200
    assert gateway.get(raw.json()["url"], headers={"range": "bytes=0-0"}).status_code == 206
    deleted = gateway.delete(f"/record?id={raw.json()['record_id']}", headers={"authorization": f"Bearer {token}"})
    assert deleted.status_code == 204
    gateway.post("/record", data={"user_id": str(user_id), "access_token": token + "x"}, files={"file": ("a", wav)})

    time.sleep(1.5)  # nginx flushes its buffered access log every second
    access_log = stack.access_log_since()
    assert "POST /record" in access_log  # the log is there, and written
    assert token not in access_log
    assert token not in stack.log.read_text()  # the functions' and nginx's own output
    for created in (form, raw):  # a record is named in the logs, but never by its id: id and user are its link
        assert created.json()["record_id"] not in access_log + stack.log.read_text()

    with engine.connect() as connection:
        for table in ("users", "records"):
            hits = connection.execute(
                text(f"SELECT count(*) FROM {table} AS row WHERE row::text LIKE :token"),
                {"token": f"%{token}%"},
            ).scalar_one()
            assert hits == 0, table
