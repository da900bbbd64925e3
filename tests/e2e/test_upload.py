"""POST /record through nginx: links, limits at the edge, and what a broken upload leaves (nothing)."""

import re
import socket
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import Engine

from devstack.background import ffmpeg_children
from tests.support.audio import Wav, durations_match, probe_mp3
from tests.support.functions import record_count
from tests.support.problems import assert_problem
from tests.support.stacks import Stack, client, wait_for

# Bytes are touched here: every test runs on a stack of each backend.
pytestmark = pytest.mark.every_backend


@pytest.fixture(scope="module")
def user(uploader_via_gateway: tuple[int, str]) -> tuple[int, str]:
    return uploader_via_gateway


def test_form_upload_through_the_gateway(gateway: httpx2.Client, stack: Stack, user: tuple[int, str]) -> None:
    response = gateway.post(
        "/record",
        data={"user_id": str(user[0]), "access_token": user[1]},
        files={"file": ("memo.wav", Wav(duration_s=1.5).to_bytes(), "audio/wav")},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    # The link names the host and port the client used, as nginx forwarded them.
    assert re.fullmatch(rf"{stack.base_url}/record\?id={body['record_id']}&user={user[0]}", body["url"])
    assert response.headers["location"] == body["url"]
    assert body["duration_s"] == 1.5


def test_raw_upload_through_the_gateway(gateway: httpx2.Client, user: tuple[int, str]) -> None:
    response = gateway.post(
        f"/record?user_id={user[0]}",
        content=Wav(duration_s=0.5, channels=6, sample_rate=96_000, bits=24).to_bytes(),
        headers={"authorization": f"Bearer {user[1]}", "content-type": "audio/x-wav"},
    )
    assert response.status_code == 201, response.text


def test_errors_come_back_through_the_gateway(gateway: httpx2.Client, user: tuple[int, str]) -> None:
    headers = {"content-type": "audio/wav"}
    assert_problem(gateway.post(f"/record?user_id={user[0]}", content=Wav().to_bytes(), headers=headers), 401)
    auth = {"authorization": f"Bearer {user[1]}"} | headers
    assert_problem(gateway.post(f"/record?user_id={user[0]}", content=b"#EXTM3U\n/etc/passwd\n", headers=auth), 415)
    assert_problem(gateway.post(f"/record?user_id={user[0]}", content=b"", headers=auth), 422)


def send_head_only(stack: Stack, head: bytes) -> bytes:
    """Send request headers and no body; return what the gateway answers."""
    port = int(stack.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        return connection.recv(65_536)


def test_gateway_refuses_an_oversized_upload_from_content_length(stack: Stack) -> None:
    """413 before a byte of the body is sent (MAX_UPLOAD_MB defaults to 256)."""
    answer = send_head_only(
        stack,
        b"POST /record?user_id=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: audio/wav\r\nContent-Length: 300000000\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in answer


def test_disconnect_mid_upload_leaves_no_row_process_or_file(
    stack: Stack, engine: Engine, user: tuple[int, str], function_tmpdir: Path
) -> None:
    add_record = stack.function_processes()["add_record"]
    before = record_count(engine)
    wav = Wav(duration_s=20, sample_rate=44_100, channels=2).to_bytes()
    port = int(stack.base_url.rsplit(":", 1)[1])
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        connection.sendall(
            f"POST /record?user_id={user[0]} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {user[1]}\r\nContent-Type: audio/wav\r\n"
            f"Content-Length: {len(wav)}\r\n\r\n".encode()
        )
        connection.sendall(wav[: len(wav) // 2])
        assert wait_for(lambda: ffmpeg_children(add_record)), "the conversion never started"

        # Mid-conversion, the service keeps answering: the same function, and the others.
        with client(stack) as gateway_client:
            assert gateway_client.post("/register", json={"name": "meanwhile"}).status_code == 201
        health = httpx2.get(f"http://127.0.0.1:{stack.ports.functions['add_record']}/healthz", timeout=5)
        assert health.status_code == 200
    finally:
        connection.close()

    assert wait_for(lambda: not ffmpeg_children(add_record)), "ffmpeg outlived the upload"
    assert record_count(engine) == before
    assert list(function_tmpdir.iterdir()) == []


def test_stored_mp3_matches_its_wav(gateway: httpx2.Client, user: tuple[int, str]) -> None:
    response = gateway.post(
        f"/record?user_id={user[0]}",
        content=Wav(duration_s=4, sample_rate=22_050, channels=1).to_bytes(),
        headers={"authorization": f"Bearer {user[1]}", "content-type": "audio/wav"},
    )
    link = response.json()["url"]
    mp3 = gateway.get(link.removeprefix(str(gateway.base_url).rstrip("/"))).content
    probe = probe_mp3(mp3)
    assert (probe.sample_rate, probe.channels) == (22_050, 1)
    assert durations_match(probe.duration_s, 4, probe.sample_rate)
