"""`POST /register`: create a user and hand out its access token, once."""

import logging

from sqlalchemy import Engine
from sqlmodel import Session
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


def insert_user(engine: Engine, name: str, token_digest: bytes) -> int:
    with Session(engine) as session:
        user = User(name=name, token_sha256=token_digest)
        session.add(user)
        session.commit()
        assert user.id is not None
        return user.id


async def register(request: Request) -> Response:
    new_user = validate(UserCreate, await read_json(request, MAX_BODY_BYTES))
    token = new_access_token()
    user_id = await run_in_threadpool(insert_user, engine_of(request), new_user.name, hash_token(token))
    logger.info("registered user_id=%d", user_id)
    body = UserRegistered(user_id=user_id, access_token=token)
    # The token is shown this once; no cache along the way may keep a copy.
    return JSONResponse(body.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})


routes = [Route("/register", register, methods=["POST"])]


def build(settings: Settings | None = None) -> Starlette:
    return create_app("register", routes, settings)


app = build()
