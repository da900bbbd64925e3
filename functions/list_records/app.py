"""`GET /records`: the caller's own records, newest first, a page at a time.

The caller is the owner of the Bearer token; nobody can list another's
records. Each page is one indexed query (see store.py), and `next` is an
opaque cursor for the page after it, or null on the last page.
"""

import typing
import uuid
from datetime import datetime
from urllib.parse import urlencode

from pydantic import BaseModel, Field, TypeAdapter
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from typing_extensions import TypedDict  # pydantic reads TypedDicts from typing only on 3.12+

from common.auth import bearer_digest, unauthorized
from common.batches import Batcher
from common.config import Settings
from common.links import links_base, record_url
from common.payloads import validate_query
from common.problems import Problem
from common.web import AppState, create_app, settings_of, state_of

from .cursor import InvalidCursorError, Position
from .store import OwnersPage, PageRequest, owners_pages

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class ListQuery(BaseModel):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=64)


class RecordListed(TypedDict):
    record_id: uuid.UUID
    url: str
    original_name: str
    duration_s: float
    size_bytes: int
    created_at: datetime


class RecordsPage(TypedDict):
    """The answer to `GET /records`."""

    user_id: int
    records: list[RecordListed]
    next: str | None


# Dicts of values the database typed, serialized in one pass: no model is built per record.
_PAGE_JSON = TypeAdapter(RecordsPage)


#: Concurrent page requests are answered together, like register's registrations.
MAX_BATCH = 64


# typing's TypedDict, as AppState is: ListState below cannot mix it with typing_extensions'.
class PagesState(typing.TypedDict):
    pages: Batcher[PageRequest, OwnersPage | None]


class ListState(AppState, PagesState):
    """list_records' lifespan state: the common one and its batcher."""


def page_batcher(_settings: Settings, engine: Engine) -> PagesState:
    return {"pages": Batcher(lambda requests: owners_pages(engine, requests), MAX_BATCH)}


def parse_cursor(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    try:
        return Position.decode(cursor)
    except InvalidCursorError:
        raise Problem(
            422,
            "The cursor is not one this service gave out; start again without it.",
            errors=[{"field": "cursor", "message": "not a cursor from a previous page"}],
        ) from None


async def list_records(request: Request) -> Response:
    settings = settings_of(request)
    digest = bearer_digest(request)
    query = validate_query(ListQuery, request)
    after = parse_cursor(query.cursor)
    base = links_base(request, settings)
    found = await state_of(request, ListState)["pages"].submit((digest, query.limit, after))
    if found is None:
        raise unauthorized()
    following = found.records[-1].position.encode() if found.more else None
    page: RecordsPage = {
        "user_id": found.user_id,
        "records": [
            {
                "record_id": record.record_id,
                "url": record_url(base, record.record_id, found.user_id),
                "original_name": record.original_name,
                "duration_s": record.duration_s,
                "size_bytes": record.size_bytes,
                "created_at": record.created_at,
            }
            for record in found.records
        ],
        "next": following,
    }
    # The answer is one user's, fetched with their token: no cache may keep it.
    headers = {"Cache-Control": "no-store", "Vary": "Authorization"}
    if following is not None:
        headers["Link"] = f'</records?{urlencode({"limit": query.limit, "cursor": following})}>; rel="next"'
    return Response(_PAGE_JSON.dump_json(page), headers=headers, media_type="application/json")


routes = [Route("/records", list_records, methods=["GET"])]


def build(settings: Settings | None = None) -> Starlette:
    # Reads only, each a statement of its own.
    return create_app("list_records", routes, settings, state=page_batcher, autocommit=True)


app = build()
