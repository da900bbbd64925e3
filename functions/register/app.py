"""`POST /register`: create a user and hand out its access token, once."""

import logging

from sqlalchemy import Engine, insert
from sqlmodel import col
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.config import Settings
from common.models import User, UserCreate, UserRegistered
from common.payloads import read_json, validate
from common.security import hash_token, new_access_token
from common.web import create_app, engine_of

logger = logging.getLogger("records.register")

# A name of 100 characters is a few hundred bytes of JSON; anything near this is not a registration.
MAX_BODY_BYTES = 16 * 1024


# Built once: constructing the statement per request cost a fifth of its CPU.
INSERT_USER = insert(User).returning(col(User.id))


def insert_user(engine: Engine, name: str, token_digest: bytes) -> int:
    # One INSERT ... RETURNING, atomic on its own, on an autocommit engine: no
    # BEGIN/COMMIT round trips, no ORM unit of work, no reload after commit.
    # Together those cost more than the rest of the request (docs/benchmarks.md).
    with engine.connect() as connection:
        user_id = connection.execute(INSERT_USER, {"name": name, "token_sha256": token_digest}).scalar_one()
    assert user_id is not None
    return user_id


async def register(request: Request) -> Response:
    new_user = validate(UserCreate, await read_json(request, MAX_BODY_BYTES))
    token = new_access_token()
    user_id = await run_in_threadpool(insert_user, engine_of(request), new_user.name, hash_token(token))
    logger.debug("registered user_id=%d", user_id)
    body = UserRegistered(user_id=user_id, access_token=token)
    # The token is shown this once; no cache along the way may keep a copy.
    return JSONResponse(body.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})


routes = [Route("/register", register, methods=["POST"])]


def build(settings: Settings | None = None) -> Starlette:
    return create_app("register", routes, settings, autocommit=True)


app = build()
