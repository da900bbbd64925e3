"""`GET|HEAD /record?id=<record_id>&user=<user_id>`: download an MP3 like a media server would.

The link is a capability: whoever holds it may download. An id that does not
exist and an id of another user get the same 404, so links cannot be probed.
A link is answered in one spelling only, the one add_record gives out; any
other (an upper-case or `urn:uuid:` id, `user=01`, the parameters in another
order or with others beside them) is redirected to it (308). The gateway
caches that one spelling alone, so a record has one cache entry. The Host
plays no part: a download builds no link, so any Host is served.
"""

import logging
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TypedDict
from urllib.parse import urlencode

from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from common.batches import Batcher
from common.config import Settings
from common.links import LinkUser
from common.logs import record_ref
from common.payloads import validate_query
from common.problems import no_such_record, problem_response
from common.storage.read import RecordGoneError, stream_bytes
from common.web import AppState, backends_of, create_app, engine_of, state_of

from .headers import (
    ByteRange,
    UnsatisfiableRangeError,
    content_disposition,
    entity_tag,
    http_date,
    if_range_holds,
    none_match,
    requested_range,
)
from .metrics import BYTES_SERVED, DOWNLOADS
from .relay import object_redirect
from .store import Link, StoredRecord, find_records

logger = logging.getLogger("records.get_record")


#: Concurrent lookups (the gateway revalidates every cached download) go together, as register's inserts do.
MAX_BATCH = 64


class LookupsState(TypedDict):
    lookups: Batcher[Link, StoredRecord | None]


class GetState(AppState, LookupsState):
    """get_record's lifespan state: the common one and its batcher."""


def lookup_batcher(_settings: Settings, engine: Engine) -> LookupsState:
    return {"lookups": Batcher(lambda links: find_records(engine, links), MAX_BATCH)}


class RecordQuery(BaseModel):
    id: uuid.UUID
    user: LinkUser


def parse_query(request: Request) -> tuple[RecordQuery, str]:
    """The link's parameters and their one spelling; 422 for a parameter given twice or not valid."""
    query = validate_query(RecordQuery, request)
    return query, urlencode({"id": str(query.id), "user": query.user})


async def get_record(request: Request) -> Response:
    query, canonical = parse_query(request)
    if request.url.query != canonical:
        return RedirectResponse(f"/record?{canonical}", status_code=308)
    record = await state_of(request, GetState)["lookups"].submit((query.id, query.user))
    if record is None:
        raise no_such_record()

    etag = entity_tag(record.sha256)
    last_modified = http_date(record.created_at)
    every_answer = {
        "ETag": etag,
        "Last-Modified": last_modified,
        # The link is a capability URL: only the downloader's own cache may keep the file,
        # and it must not leak to other sites through Referer.
        "Cache-Control": "private",
        "Referrer-Policy": "no-referrer",
        # For the gateway's cache alone (nginx drops it before the client): keep
        # the file, but count it as expired from the start, so that every cached
        # download is revalidated here first, and a deleted record is never served.
        "X-Accel-Expires": "@1",
    }
    if none_match(request.headers.get("if-none-match"), etag):
        DOWNLOADS.labels("not_modified").inc()
        return Response(status_code=304, headers=every_answer)

    headers = every_answer | {
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(record.original_name),
        "X-Content-Type-Options": "nosniff",
    }
    status, byte_range = 200, ByteRange(0, record.size_bytes - 1)
    # Range applies to GET only (RFC 9110 §14.2); HEAD describes the whole file.
    if request.method == "GET" and if_range_holds(request.headers.get("if-range"), etag, last_modified):
        try:
            asked = requested_range(request.headers.get("range"), record.size_bytes)
        except UnsatisfiableRangeError:
            detail = f"The range lies outside the file's {record.size_bytes} bytes."
            return problem_response(416, detail, headers={"Content-Range": f"bytes */{record.size_bytes}"})
        if asked is not None:
            status, byte_range = 206, asked
            headers["Content-Range"] = byte_range.content_range(record.size_bytes)
    headers["Content-Length"] = str(byte_range.length)

    if request.method == "HEAD":
        DOWNLOADS.labels("head").inc()
        return Response(status_code=status, headers=headers, media_type="audio/mpeg")
    DOWNLOADS.labels("ranged" if status == 206 else "full").inc()
    backend = backends_of(request).of(record.storage)
    if backend.serves_by_url:
        # The gateway fetches the bytes from the store itself (nginx/templates, the object relay).
        url = backend.signed_url(query.id)
        redirect = object_redirect(url, record.sha256, last_modified)
        for sized in ("Content-Length", "Content-Range"):  # of the bytes the relay sends, not of this answer
            headers.pop(sized, None)
        return Response(headers=headers | {"X-Accel-Redirect": redirect}, media_type="audio/mpeg")
    body = counted(stream_bytes(engine_of(request), query.id, byte_range.start, byte_range.end))
    return StreamingResponse(body, status_code=status, headers=headers, media_type="audio/mpeg")


async def counted(chunks: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(chunks):  # a client that leaves closes the stream below too, at once
        async for chunk in chunks:
            BYTES_SERVED.inc(len(chunk))
            yield chunk


class CutShortWhenGone:
    """A record deleted mid-download: close the connection instead of finishing the response.

    The status and Content-Length are long sent; a connection closed before
    that many bytes is how HTTP/1.1 says the body is incomplete, so no client
    (nor the gateway's cache) takes what arrived for the whole file.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except RecordGoneError as gone:
            logger.warning("record=%s was deleted mid-download; the connection is closed short", record_ref(str(gone)))


routes = [Route("/record", get_record, methods=["GET"])]


def build(settings: Settings | None = None) -> Starlette:
    # Reads only, each a statement of its own.
    return create_app(
        "get_record",
        routes,
        settings,
        state=lookup_batcher,
        autocommit=True,
        check_host=False,
        middleware=[Middleware(CutShortWhenGone)],
    )


app = build()
