"""`DELETE /record?id=<record_id>`: remove one of the caller's records, bytes and all.

The caller is the owner of the Bearer token. The record's row goes in one
statement, and its chunks with it (ON DELETE CASCADE), in the same transaction;
with RECORD_STORAGE=s3 its object goes next (a failure there is the sweeper's).
An unknown id and another user's id get the same 404, as downloads do. So does
a second DELETE of the same record: it deleted nothing, and saying 204 would
claim it did (and make a mistyped id look deleted). The link may be sent as it
is: a `user` parameter, when given, must be the caller's.

Once this answers, the link answers 404 everywhere: the gateway asks get_record
before serving any cached copy (nginx/includes/record-cache.conf).
"""

import logging
import uuid

import anyio.to_thread
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from common.auth import token_owner
from common.config import Settings
from common.db import run_in_pool
from common.links import LinkUser
from common.logs import record_ref
from common.payloads import validate_query
from common.problems import no_such_record
from common.storage.backend import Backends
from common.web import backends_of, create_app, engine_of

from .store import delete_owned

logger = logging.getLogger("records.delete_record")


class DeleteQuery(BaseModel):
    id: uuid.UUID
    user: LinkUser | None = None


async def delete_record(request: Request) -> Response:
    engine = engine_of(request)
    user_id = await token_owner(request, engine)
    query = validate_query(DeleteQuery, request)
    owned = query.user in (None, user_id)
    storage = await run_in_pool(engine, delete_owned, query.id, user_id) if owned else None
    if storage is None:
        raise no_such_record()
    reference = record_ref(query.id)
    logger.info("deleted record=%s user_id=%d", reference, user_id, extra={"record": reference, "user_id": user_id})
    await remove_bytes(backends_of(request), storage, query.id, reference)
    return Response(status_code=204)


async def remove_bytes(backends: Backends, storage: str, record_id: uuid.UUID, reference: str) -> None:
    """The bytes after the row: the record is gone for everyone already, whatever happens here.

    Bytes the store would not remove now have no row; the sweeper removes them
    (common.storage.sweep), and nobody can reach them meanwhile.
    """
    try:
        await anyio.to_thread.run_sync(backends.of(storage).remove, record_id)
    except Exception:
        logger.warning("record=%s: its bytes stay for the sweeper", reference, exc_info=True)


routes = [Route("/record", delete_record, methods=["DELETE"])]


def build(settings: Settings | None = None) -> Starlette:
    # One statement per request: no transaction to open and close around it.
    return create_app("delete_record", routes, settings, autocommit=True, check_host=False)


app = build()
