"""POST /record through the add_record function's own app (Starlette's TestClient)."""

import asyncio
import concurrent.futures
import hashlib
import math
import re
import uuid
from collections.abc import Iterator

import httpx2
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from common.config import Settings
from common.models import Record, RecordChunk
from common.security import new_access_token
from common.storage import CHUNK_BYTES
from devstack.seed import create_user, seed_record
from functions.add_record.convert import Mp3TooLargeError, converting, ffmpeg_arguments
from functions.add_record.mp3 import MP3_SAMPLE_RATES
from functions.add_record.wav import WavFormat
from tests.support.audio import Wav, durations_match, probe_mp3
from tests.support.functions import build_function, record_count
from tests.support.problems import assert_problem
from tests.support.sinks import Collected

URL_PATTERN = re.compile(r"^http://testserver/record\?id=(?P<id>[0-9a-f-]{36})&user=(?P<user>\d+)$")


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_function("add_record", settings)) as client:
        yield client


@pytest.fixture(scope="module")
def user(uploader: tuple[int, str]) -> tuple[int, str]:
    return uploader


def stored(engine: Engine, record_id: str) -> tuple[Record, bytes]:
    with Session(engine) as session:
        record = session.get(Record, uuid.UUID(record_id))
        assert record is not None
        chunks = session.exec(
            select(RecordChunk.seq, RecordChunk.data)
            .where(col(RecordChunk.record_id) == record.id)
            .order_by(col(RecordChunk.seq))
        ).all()
    assert [seq for seq, _ in chunks] == list(range(len(chunks)))
    assert all(len(data) == CHUNK_BYTES for _, data in chunks[:-1])
    return record, b"".join(bytes(data) for _, data in chunks)


def post_form(client: TestClient, user: tuple[int, str], wav: bytes, filename: str = "take 1.wav") -> httpx2.Response:
    return client.post(
        "/record",
        data={"user_id": str(user[0]), "access_token": user[1]},
        files={"file": (filename, wav, "audio/wav")},
    )


def post_raw(client: TestClient, user: tuple[int, str], wav: bytes, **headers: str) -> httpx2.Response:
    return client.post(
        f"/record?user_id={user[0]}",
        content=wav,
        headers={"authorization": f"Bearer {user[1]}", "content-type": "audio/wav", **headers},
    )


def test_multipart_upload_is_converted_stored_and_linked(
    client: TestClient, engine: Engine, user: tuple[int, str]
) -> None:
    wav = Wav(duration_s=2.0)
    response = post_form(client, user, wav.to_bytes())

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"record_id", "url", "duration_s", "size_bytes"}
    match = URL_PATTERN.match(body["url"])
    assert match is not None, body["url"]
    assert (match["id"], int(match["user"])) == (body["record_id"], user[0])
    assert response.headers["location"] == body["url"]
    assert body["duration_s"] == 2.0

    record, mp3 = stored(engine, body["record_id"])
    assert record.user_id == user[0]
    assert record.original_name == "take 1.wav"
    assert record.size_bytes == body["size_bytes"] == len(mp3)
    assert bytes(record.sha256) == hashlib.sha256(mp3).digest()
    assert (record.bitrate_kbps, record.sample_rate, record.channels) == (192, 44_100, 2)
    probe = probe_mp3(mp3)
    assert probe.codec == "mp3"
    assert durations_match(probe.duration_s, 2.0, probe.sample_rate)


def test_form_fields_may_follow_the_file(client: TestClient, user: tuple[int, str]) -> None:
    response = client.post(
        "/record",
        files=[
            ("file", ("late.wav", Wav().to_bytes(), "audio/wav")),
            ("user_id", (None, str(user[0]))),
            ("access_token", (None, user[1])),
        ],
    )
    assert response.status_code == 201, response.text


def test_form_token_may_come_as_bearer_header(client: TestClient, user: tuple[int, str]) -> None:
    response = client.post(
        "/record",
        data={"user_id": str(user[0])},
        files={"file": ("a.wav", Wav().to_bytes(), "application/octet-stream")},
        headers={"authorization": f"Bearer {user[1]}"},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("content_type", ["audio/wav", "audio/x-wav", "audio/wave", "application/octet-stream"])
def test_raw_body_upload(client: TestClient, engine: Engine, user: tuple[int, str], content_type: str) -> None:
    response = post_raw(
        client,
        user,
        Wav().to_bytes(),
        **{"content-type": content_type, "content-disposition": 'attachment; filename="../../etc/Voice memo.wav"'},
    )
    assert response.status_code == 201, response.text
    record, _ = stored(engine, response.json()["record_id"])
    assert record.original_name == "Voice memo.wav"  # a label: no folders survive


def test_raw_body_without_a_name_gets_a_default(client: TestClient, engine: Engine, user: tuple[int, str]) -> None:
    response = post_raw(client, user, Wav().to_bytes())
    record, _ = stored(engine, response.json()["record_id"])
    assert record.original_name == "record.wav"


FORMATS = [
    Wav(bits=8, channels=1, sample_rate=8_000),
    Wav(bits=16, channels=1, sample_rate=11_025),
    Wav(bits=24, channels=2, sample_rate=22_050),
    Wav(bits=32, channels=2, sample_rate=32_000),
    Wav(bits=32, encoding="float", channels=2, sample_rate=44_100),
    Wav(bits=64, encoding="float", channels=1, sample_rate=48_000),
    Wav(bits=24, extensible=True, channels=6, sample_rate=48_000),
    Wav(bits=32, encoding="float", extensible=True, channels=2, sample_rate=96_000),
    Wav(bits=16, channels=2, sample_rate=88_200),
    Wav(bits=16, channels=2, sample_rate=37_800),
    Wav(bits=16, chunks_before_fmt=[(b"JUNK", b"\0" * 27)], chunks_before_data=[(b"LIST", b"INFOISFT\x03\0\0\0ab\0")]),
    Wav(bits=16, declared_size=0),
    Wav(bits=16, declared_size=0xFFFFFFFF),
]


@pytest.mark.parametrize(
    "wav",
    FORMATS,
    ids=[
        "u8-mono-8k", "s16-mono-11k", "s24-22k", "s32-32k", "f32-44k", "f64-mono-48k", "ext-s24-6ch-48k",
        "ext-f32-96k", "s16-88k", "s16-37.8k", "extra-chunks", "streaming-0", "streaming-ffffffff",
    ],
)  # fmt: skip
def test_every_accepted_format_converts_with_its_duration(
    client: TestClient, engine: Engine, user: tuple[int, str], wav: Wav
) -> None:
    response = post_raw(client, user, wav.to_bytes())
    assert response.status_code == 201, response.text
    record, mp3 = stored(engine, response.json()["record_id"])
    probe = probe_mp3(mp3)
    expected_rate = max(rate for rate in MP3_SAMPLE_RATES if rate <= wav.sample_rate)
    assert (probe.sample_rate, probe.channels) == (expected_rate, min(wav.channels, 2))
    assert (record.sample_rate, record.channels) == (probe.sample_rate, probe.channels)
    assert record.duration_s == pytest.approx(wav.duration_s, abs=1e-3)
    assert durations_match(probe.duration_s, wav.duration_s, probe.sample_rate)
    assert math.ceil(len(mp3) / CHUNK_BYTES) >= 1


def unauthorized_body(response: httpx2.Response) -> dict[str, object]:
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    return body


@pytest.mark.parametrize(
    ("wav", "rate", "max_kbps"),
    [
        (Wav(bits=16, channels=1, sample_rate=8_001, duration_s=5), 8_000, 128),  # was 48 kHz at 192k
        (Wav(bits=8, channels=1, sample_rate=8_000, duration_s=5), 8_000, 64),
        (Wav(bits=16, channels=1, sample_rate=44_099, duration_s=5), 32_000, 192),
    ],
    ids=["8001hz", "u8-8k", "44099hz"],
)
def test_an_odd_rate_is_resampled_down_and_never_stored_larger_than_it_carries(
    client: TestClient, engine: Engine, user: tuple[int, str], wav: Wav, rate: int, max_kbps: int
) -> None:
    upload = wav.to_bytes()
    response = post_raw(client, user, upload)
    assert response.status_code == 201, response.text
    record, mp3 = stored(engine, response.json()["record_id"])
    assert (record.sample_rate, probe_mp3(mp3).sample_rate) == (rate, rate)
    assert record.bitrate_kbps <= max_kbps
    assert record.size_bytes < len(upload) * 1.1  # frames and the encoder's padding, no more


@pytest.mark.usefixtures("nothing_stored")
def test_every_credential_failure_gets_the_same_401(client: TestClient, user: tuple[int, str]) -> None:
    wav = Wav(duration_s=0.2).to_bytes()
    other = (user[0] + 10_000, user[1])
    attempts = [
        client.post("/record", content=wav, headers={"content-type": "audio/wav"}),
        client.post(f"/record?user_id={user[0]}", content=wav, headers={"content-type": "audio/wav"}),
        post_raw(client, other, wav),
        post_raw(client, (user[0], new_access_token()), wav),
        post_raw(client, (user[0], "not-a-uuid"), wav),
        client.post("/record", files={"file": ("a.wav", wav)}),
        client.post("/record", data={"user_id": str(user[0]), "access_token": "wrong"}, files={"file": ("a.wav", wav)}),
    ]
    bodies = [unauthorized_body(response) for response in attempts]
    assert all(body == bodies[0] for body in bodies)


@pytest.mark.usefixtures("nothing_stored")
def test_token_in_the_query_string_is_refused(client: TestClient, user: tuple[int, str]) -> None:
    response = client.post(
        f"/record?user_id={user[0]}&access_token={user[1]}",
        content=Wav().to_bytes(),
        headers={"content-type": "audio/wav"},
    )
    body = assert_problem(response, 400)
    assert "URL" in body["detail"]


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("user_id", ["abc", "-1", "0", "1.5", "١٢", "9" * 4301, "9" * 20])
def test_malformed_user_id_is_422(client: TestClient, user: tuple[int, str], user_id: str) -> None:
    response = client.post(
        f"/record?user_id={user_id}",
        content=Wav().to_bytes(),
        headers={"content-type": "audio/wav", "authorization": f"Bearer {user[1]}"},
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [{"field": "user_id", "message": "must be a positive integer"}]


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain", "audio/mpeg", "video/x-msvideo"])
def test_other_content_types_are_415(client: TestClient, user: tuple[int, str], content_type: str | None) -> None:
    headers = {"authorization": f"Bearer {user[1]}"} | ({"content-type": content_type} if content_type else {})
    response = client.post(f"/record?user_id={user[0]}", content=Wav().to_bytes(), headers=headers)
    assert_problem(response, 415)
    assert "multipart/form-data" in response.headers["accept-post"]


HOSTILE = {
    "mp3-renamed": b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes.fromhex("fffbb064") * 500,
    "playlist": b"#EXTM3U\n#EXTINF:10,\n/etc/passwd\nfile:///etc/passwd\n",
    "avi": b"RIFF\x00\x10\x00\x00AVI LIST\x00\x00\x00\x00",
    "random": bytes(range(256)) * 64,
    "mp3-in-wav": Wav(format_tag=0x0055).to_bytes(),
}


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("name", HOSTILE)
def test_files_that_are_not_wav_are_415_whatever_their_name(
    client: TestClient, user: tuple[int, str], name: str
) -> None:
    assert_problem(post_form(client, user, HOSTILE[name], "song.wav"), 415)
    assert_problem(post_raw(client, user, HOSTILE[name]), 415)


INVALID = {
    "empty": b"",
    "header-only": Wav(duration_s=0).to_bytes(),
    "truncated-header": Wav().to_bytes()[:30],
    "0-channels": Wav(channels=0, block_align=2).to_bytes(),
    "9-channels": Wav(channels=9).to_bytes(),
    "rate-1hz": Wav(sample_rate=1, duration_s=100).to_bytes(),
    "rate-1mhz": Wav(sample_rate=1_000_000, duration_s=0.001).to_bytes(),
    "block-align": Wav(block_align=7).to_bytes(),
    "data-before-fmt": b"RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00\x00\x00\x00\x00",
}


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("name", INVALID)
def test_impossible_or_empty_wavs_are_422_naming_the_file(client: TestClient, user: tuple[int, str], name: str) -> None:
    body = assert_problem(post_form(client, user, INVALID[name]), 422)
    assert body["errors"][0]["field"] == "file"
    assert_problem(post_raw(client, user, INVALID[name]), 422)


@pytest.mark.usefixtures("nothing_stored")
def test_form_without_a_file_is_422(client: TestClient, user: tuple[int, str]) -> None:
    response = client.post(
        "/record", data={"user_id": str(user[0]), "access_token": user[1]}, files={"other": ("a.txt", b"x")}
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [{"field": "file", "message": "missing"}]


@pytest.mark.usefixtures("nothing_stored")
def test_form_with_two_files_is_422(client: TestClient, user: tuple[int, str]) -> None:
    wav = Wav(duration_s=0.1).to_bytes()
    response = client.post(
        "/record",
        data={"user_id": str(user[0]), "access_token": user[1]},
        files=[("file", ("a.wav", wav)), ("file", ("b.wav", wav))],
    )
    assert_problem(response, 422)


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize(
    "body",
    [b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\nRIFF", b"not multipart at all"],
    ids=["no-closing-boundary", "garbage"],
)
def test_malformed_multipart_is_400(client: TestClient, user: tuple[int, str], body: bytes) -> None:
    response = client.post(
        "/record",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=x", "authorization": f"Bearer {user[1]}"},
    )
    assert_problem(response, 400)
    missing = client.post("/record", content=b"--x--", headers={"content-type": "multipart/form-data"})
    assert_problem(missing, 400)


@pytest.mark.usefixtures("nothing_stored")
def test_a_boundary_longer_than_the_parser_reads_is_400(client: TestClient, user: tuple[int, str]) -> None:
    boundary = "b" * 300
    response = client.post(
        "/record",
        content=f"--{boundary}\r\n".encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}", "authorization": f"Bearer {user[1]}"},
    )
    assert "boundary" in assert_problem(response, 400)["detail"]


@pytest.fixture(scope="module")
def small_client(settings: Settings) -> Iterator[TestClient]:
    """Limits small enough to cross in a test: 1 MB uploads, 2 s recordings."""
    with TestClient(build_function("add_record", settings, max_upload_mb=1, max_duration_s=2)) as client:
        yield client


@pytest.mark.usefixtures("nothing_stored")
def test_upload_over_the_size_limit_is_413_declared_or_streamed(
    small_client: TestClient, user: tuple[int, str]
) -> None:
    big = Wav(duration_s=1.5, sample_rate=96_000, channels=2, bits=32).to_bytes()
    assert len(big) > 1024 * 1024
    assert_problem(post_raw(small_client, user, big), 413)

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(big), 65_536):
            yield big[start : start + 65_536]

    response = small_client.post(
        f"/record?user_id={user[0]}",
        content=chunked(),
        headers={"authorization": f"Bearer {user[1]}", "content-type": "audio/wav"},
    )
    assert_problem(response, 413)


@pytest.mark.usefixtures("nothing_stored")
def test_recording_over_the_duration_limit_is_413(small_client: TestClient, user: tuple[int, str]) -> None:
    body = assert_problem(post_raw(small_client, user, Wav(duration_s=3, sample_rate=8_000).to_bytes()), 413)
    assert "2 s" in body["detail"]
    streaming = Wav(duration_s=3, sample_rate=8_000, declared_size=0xFFFFFFFF).to_bytes()
    assert_problem(post_raw(small_client, user, streaming), 413)


def test_past_the_converters_an_upload_gets_503_at_once_with_retry_after(
    settings: Settings, user: tuple[int, str]
) -> None:
    app = build_function("add_record", settings, max_concurrent_conversions=1)
    with TestClient(app) as client:
        admission = client.app_state["admission"]
        admission.converting = 1  # a conversion that never ends
        response = post_raw(client, user, Wav().to_bytes())
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) > 0
        admission.converting = 0
        assert post_raw(client, user, Wav().to_bytes()).status_code == 201


def test_an_honest_burst_from_one_user_queues_and_every_upload_succeeds(settings: Settings, engine: Engine) -> None:
    """16 at once, at most one converting per user at a time: all 201, none refused."""
    user = create_user(engine, "burst")
    app = build_function("add_record", settings, max_conversions_per_user=1)
    wav = Wav(duration_s=2, sample_rate=8_000, channels=1).to_bytes()
    with TestClient(app) as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: post_raw(client, user, wav).status_code, range(16)))
    assert statuses == [201] * 16


@pytest.mark.usefixtures("nothing_stored")
def test_an_unauthenticated_upload_never_takes_a_converter(settings: Settings, user: tuple[int, str]) -> None:
    app = build_function("add_record", settings, max_concurrent_conversions=1)
    with TestClient(app) as client:
        client.app_state["admission"].converting = 1  # none free: taking one would be 503
        wrong = post_raw(client, (user[0], new_access_token()), Wav().to_bytes())
        assert_problem(wrong, 401)


def test_a_form_whose_small_file_comes_before_the_credentials_is_held_and_stored(
    client: TestClient, user: tuple[int, str]
) -> None:
    body = multipart([
        ("file", "late.wav", Wav(duration_s=0.2).to_bytes()),
        ("user_id", None, str(user[0]).encode()),
        ("access_token", None, user[1].encode()),
    ])  # fmt: skip
    assert post_multipart(client, (user[0], ""), body).status_code == 201


@pytest.mark.usefixtures("nothing_stored")
def test_a_form_whose_large_file_comes_before_the_credentials_is_422(client: TestClient, user: tuple[int, str]) -> None:
    body = multipart([
        ("file", "late.wav", Wav(duration_s=10).to_bytes()),  # 1.7 MB, over the 1 MiB held
        ("user_id", None, str(user[0]).encode()),
        ("access_token", None, user[1].encode()),
    ])  # fmt: skip
    problem = assert_problem(post_multipart(client, (user[0], ""), body), 422)
    assert "before the file" in problem["detail"]


@pytest.mark.usefixtures("nothing_stored")
def test_a_url_encoded_form_has_no_file_and_is_422(client: TestClient, user: tuple[int, str]) -> None:
    response = client.post("/record", data={"user_id": str(user[0]), "access_token": user[1]})
    assert assert_problem(response, 422)["errors"][0]["field"] == "file"


def test_a_user_over_their_quota_gets_403_and_nothing_is_stored(settings: Settings, engine: Engine) -> None:
    user = create_user(engine, "quota")
    seed_record(engine, user[0], b"x" * 900_000)
    app = build_function("add_record", settings, user_quota_mb=1)
    with TestClient(app) as client:
        assert post_raw(client, user, Wav(duration_s=0.2).to_bytes()).status_code == 201  # fits
        before = record_count(engine)
        over = post_raw(client, user, Wav(duration_s=30, sample_rate=8_000, channels=1).to_bytes())  # 240 KB
        assert "storage" in assert_problem(over, 403)["detail"]
        assert record_count(engine) == before
        full = create_user(engine, "full")
        seed_record(engine, full[0], b"x" * (1024 * 1024))
        assert_problem(post_raw(client, full, Wav(duration_s=0.1).to_bytes()), 403)  # refused before converting


def test_when_everyones_records_fill_the_service_uploads_get_507(settings: Settings, engine: Engine) -> None:
    """A fresh user, far under their own quota, is refused once the service as a whole is full."""
    fresh = create_user(engine, "fresh")
    seed_record(engine, fresh[0], b"x" * 1000)
    with TestClient(build_function("add_record", settings, max_total_storage_gb=1e-7)) as client:  # 107 bytes
        before = record_count(engine)
        refused = post_raw(client, fresh, Wav(duration_s=0.1).to_bytes())
        assert "storage is full" in assert_problem(refused, 507)["detail"]
        assert record_count(engine) == before


def test_an_mp3_larger_than_the_duration_limit_allows_is_stopped(settings: Settings) -> None:
    """ffmpeg's output is capped too: a belt to wav.py's braces."""
    wav = WavFormat("pcm", 1, 8_000, 16, 2, 44, None)

    async def convert() -> None:
        async with converting(
            ffmpeg_arguments(wav, "320k"), max_mp3_bytes=10_000, sink=Collected(), stall_timeout_s=60
        ) as conversion:
            await conversion.write(Wav(duration_s=2, sample_rate=8_000, channels=1).samples())
            await conversion.finish()

    with pytest.raises(Mp3TooLargeError):
        asyncio.run(convert())


@pytest.mark.usefixtures("nothing_stored")
def test_foreign_host_is_refused_before_anything_runs(client: TestClient, user: tuple[int, str]) -> None:
    response = post_raw(client, user, Wav().to_bytes(), host="evil.example")
    body = assert_problem(response, 400)
    assert "ALLOWED_HOSTS" in body["detail"]


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize(
    "host", ["evil.example#@localhost", "x@localhost", "localhost/path", "local host", "localhost:port", "[::1"]
)
def test_a_malformed_host_is_refused(client: TestClient, user: tuple[int, str], host: str) -> None:
    assert_problem(post_raw(client, user, Wav(duration_s=0.1).to_bytes(), host=host), 400)


def test_a_well_formed_allowed_host_with_a_port_names_the_link(client: TestClient, user: tuple[int, str]) -> None:
    response = post_raw(client, user, Wav(duration_s=0.1).to_bytes(), host="LOCALHOST:5000")
    assert response.json()["url"].startswith("http://LOCALHOST:5000/record?id=")


def test_public_base_url_overrides_the_host(settings: Settings, user: tuple[int, str]) -> None:
    with TestClient(build_function("add_record", settings, public_base_url="https://records.example.com/")) as client:
        response = post_raw(client, user, Wav(duration_s=0.2).to_bytes())
    url = response.json()["url"]
    assert url.startswith("https://records.example.com/record?id=")
    assert response.headers["location"] == url


def test_get_is_405_with_allow(client: TestClient) -> None:
    response = client.get("/record")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "abuse") -> bytes:
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def post_multipart(client: TestClient, user: tuple[int, str], body: bytes) -> httpx2.Response:
    return client.post(
        "/record",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=abuse", "authorization": f"Bearer {user[1]}"},
    )


@pytest.mark.usefixtures("nothing_stored")
def test_thousands_of_parts_are_refused(client: TestClient, user: tuple[int, str]) -> None:
    problem = assert_problem(post_multipart(client, user, multipart([(f"f{i}", None, b"x") for i in range(5000)])), 413)
    assert "parts" in problem["detail"]


@pytest.mark.usefixtures("nothing_stored")
def test_a_huge_field_is_refused(client: TestClient, user: tuple[int, str]) -> None:
    body = multipart([("user_id", None, b"1" * 100_000), ("file", "a.wav", Wav(duration_s=0.1).to_bytes())])
    problem = assert_problem(post_multipart(client, user, body), 413)
    assert "user_id" in problem["detail"]


@pytest.mark.usefixtures("nothing_stored")
def test_many_files_are_refused(client: TestClient, user: tuple[int, str]) -> None:
    wav = Wav(duration_s=0.05).to_bytes()
    body = multipart([("user_id", None, str(user[0]).encode())] + [("file", f"{i}.wav", wav) for i in range(12)])
    assert_problem(post_multipart(client, user, body), 422)


@pytest.mark.usefixtures("nothing_stored")
def test_huge_part_headers_are_refused(client: TestClient, user: tuple[int, str]) -> None:
    body = (
        b'--abuse\r\nContent-Disposition: form-data; name="x"\r\nX-Padding: '
        + b"p" * 20_000
        + b"\r\n\r\nv\r\n--abuse--\r\n"
    )
    problem = assert_problem(post_multipart(client, user, body), 400)  # python-multipart's own bound
    assert "header size" in problem["detail"]
