"""What a download's answer is made of, and the requests that exercise it: one table for every way to a record."""

import httpx2

from common.storage import CHUNK_BYTES

#: What a download's answer is made of; Date, Server and Connection may differ.
ANSWER_HEADERS = (
    "content-type",
    "content-length",
    "content-range",
    "content-disposition",
    "etag",
    "last-modified",
    "cache-control",
    "x-content-type-options",
    "referrer-policy",
)

ETAG = "<the record's ETag>"
SAME_AS_GET_RECORD = {
    "whole": {},
    "first-bytes": {"range": "bytes=0-99"},
    "across-chunks": {"range": f"bytes={CHUNK_BYTES - 10}-{CHUNK_BYTES + 10}"},
    "open-ended": {"range": f"bytes={2 * CHUNK_BYTES}-"},
    "suffix": {"range": "bytes=-500"},
    "end-past-the-size": {"range": f"bytes={3 * CHUNK_BYTES}-{10 * CHUNK_BYTES}"},
    "several-ranges": {"range": "bytes=0-9,20-29"},
    "if-range-current": {"range": "bytes=0-9", "if-range": ETAG},
    "if-range-stale": {"range": "bytes=0-9", "if-range": '"stale"'},
    "if-none-match": {"if-none-match": ETAG},
    "if-none-match-other": {"if-none-match": '"other"'},
}


def answer(response: httpx2.Response) -> tuple[int, dict[str, str | None], bytes]:
    # A 304 must carry the validators and caching fields (RFC 9110 §15.4.5); nginx adds
    # the rest of the cached headers, get_record does not: both are right.
    names = ("etag", "cache-control") if response.status_code == 304 else ANSWER_HEADERS
    return response.status_code, {name: response.headers.get(name) for name in names}, response.content
