"""Whatever a client sends, to any endpoint, through the gateway: a 4xx (or a 2xx/3xx), never a 5xx.

Hypothesis draws the odd parts (deeply nested and huge-number JSON, ranges of
thousands of digits, Hosts with user info or fragments, queries in every
spelling); the stack fixture then fails the run if any traceback reached a
function's log. schemathesis (test_schemathesis.py) covers what the API's
description allows; this covers what it does not.
"""

from urllib.parse import quote

import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.audio import Wav
from tests.support.stacks import Stack

# 503 is the one 5xx a client may see: a dependency down or a queue full, with Retry-After.
NOT_FAILURES = set(range(200, 500)) | {503}

# What may stand in a header's value: visible latin-1 and spaces, no control characters.
# (HTTP trims white space around a value, so the client refuses to send it.)
header_texts = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
).map(str.strip)
hosts = st.one_of(
    st.sampled_from(["localhost", "127.0.0.1:1", "evil.example#@localhost", "x@localhost", "[::1]", "[::1", "a b"]),
    header_texts,
).map(lambda text: text.encode("latin-1"))
numbers = st.one_of(st.integers(-(10**30), 10**30).map(str), st.just("9" * 4400), st.just("0" * 5000 + "1"))
ranges = st.one_of(
    st.builds("bytes={}-{}".format, numbers, numbers),
    st.builds("bytes=-{}".format, numbers),
    header_texts.map(lambda text: "bytes=" + text),
).map(lambda text: text.encode("latin-1"))
json_bodies = st.one_of(
    st.just(b"[" * 10_000 + b"]" * 10_000),
    st.just(b'{"name": ' + b"9" * 5000 + b"}"),
    st.just(b'{"name": {"name": ' * 3000 + b"1" + b"}" * 3000),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda inner: st.lists(inner, max_size=3)).map(
        lambda value: httpx2.Request("POST", "http://x", json={"name": value}).read()
    ),
)
# If-Range dates that no datetime holds: years past 9999 and past a C long, offsets past a day.
if_ranges = st.one_of(
    st.builds("Fri, 31 Dec {} 23:59:59 GMT".format, st.sampled_from(["10000", "99999999999999999999", "0000"])),
    st.just("Fri, 31 Dec 9999 23:59:59 -9999"),
    header_texts,
).map(lambda text: text.encode("latin-1"))
boundaries = st.one_of(st.integers(1, 400).map(lambda n: "b" * n), header_texts)
queries = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=80).map(lambda text: quote(text, safe="=&+:")),
    st.builds("id={}&user={}".format, st.uuids().map(str), numbers),
    st.builds("id={}&user=1&id={}".format, st.uuids().map(str), st.uuids().map(str)),
    st.builds("user_id={}".format, numbers),
)


def send(stack: Stack, method: str, path: str, **options: object) -> int:
    with httpx2.Client(base_url=stack.base_url, timeout=30) as client:
        return client.request(method, path, **options).status_code  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_bodies, host=hosts)
def test_register_never_fails_on_a_body(stack: Stack, body: bytes, host: bytes) -> None:
    status = send(stack, "POST", "/register", content=body, headers={"content-type": "application/json", "host": host})
    assert status in NOT_FAILURES


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries, range_=ranges, if_range=if_ranges, host=hosts, method=st.sampled_from(["GET", "HEAD"]))
def test_downloads_never_fail_on_a_query_a_range_or_a_host(
    stack: Stack, query: str, range_: bytes, if_range: bytes, host: bytes, method: str
) -> None:
    headers = {"range": range_, "if-range": if_range, "host": host}
    assert send(stack, method, f"/record?{query}", headers=headers) in NOT_FAILURES


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries, host=hosts, authorization=header_texts, chunked=st.booleans())
def test_uploads_never_fail_on_a_query_a_host_or_credentials(
    stack: Stack, query: str, host: bytes, authorization: str, chunked: bool
) -> None:
    wav = Wav(duration_s=0.05).to_bytes()
    content = iter([wav]) if chunked else wav
    headers = {"content-type": "audio/wav", "host": host, "authorization": authorization.encode("latin-1")}
    assert send(stack, "POST", f"/record?{query}", content=content, headers=headers) in NOT_FAILURES


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(boundary=boundaries, query=queries)
def test_forms_never_fail_on_a_boundary(stack: Stack, boundary: str, query: str) -> None:
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=file\r\n\r\nRIFF\r\n--{boundary}--\r\n"
    headers = {"content-type": f"multipart/form-data; boundary={boundary}".encode("latin-1")}
    assert send(stack, "POST", f"/record?{query}", content=body.encode("latin-1"), headers=headers) in NOT_FAILURES
