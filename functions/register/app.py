"""`POST /register`: create a user and hand out its access token, once."""

import logging
import unicodedata
from typing import TypedDict, cast

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import Engine, insert
from sqlmodel import col
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.config import Settings
from common.models import User, UserBase
from common.payloads import read_json, validate
from common.security import hash_token, new_access_token
from common.web import AppState, create_app, state_of

from .batches import Batcher

logger = logging.getLogger("records.register")

# A name of 100 characters is a few hundred bytes of JSON; anything near this is not a registration.
MAX_BODY_BYTES = 16 * 1024
#: Registrations written by one statement at most; far above the concurrency one process sees.
MAX_BATCH = 256

# Built once: constructing the statement per request cost a fifth of its CPU.
# sort_by_parameter_order: the ids come back in the order the rows were given.
INSERT_USERS = insert(User).returning(col(User.id), sort_by_parameter_order=True)

NewUser = tuple[str, bytes]  # name, token digest


class UserCreate(UserBase):
    """The body of `POST /register`; surrounding white space is not part of a name."""

    model_config = ConfigDict(str_strip_whitespace=True, strict=True)  # type: ignore[assignment]

    @field_validator("name")
    @classmethod
    def printable(cls, name: str) -> str:
        # PostgreSQL refuses NUL in text, and no name needs control characters.
        if any(unicodedata.category(char) == "Cc" for char in name):
            raise ValueError("must not contain control characters")
        return name


class UserRegistered(BaseModel):
    """The answer to `POST /register`: the only time the token is ever shown."""

    user_id: int
    access_token: str


UserBatcher = Batcher[NewUser, int]


def insert_users(engine: Engine, users: list[NewUser]) -> list[int]:
    # One INSERT ... RETURNING, atomic on its own, on an autocommit engine: no
    # BEGIN/COMMIT round trips, no ORM unit of work, no reload after commit.
    # Together those cost more than the rest of the request (docs/performance.md).
    rows = [{"name": name, "token_sha256": digest} for name, digest in users]
    with engine.connect() as connection:
        ids = connection.execute(INSERT_USERS, rows).scalars().all()
    assert None not in ids  # the column is the primary key; the model types it optional for inserts
    return cast(list[int], ids)


class BatcherState(TypedDict):
    users: UserBatcher


class RegisterState(AppState, BatcherState):
    """register's lifespan state: the common one and its batcher."""


def user_batcher(_settings: Settings, engine: Engine) -> BatcherState:
    return {"users": UserBatcher(lambda users: insert_users(engine, users), MAX_BATCH)}


async def register(request: Request) -> Response:
    new_user = validate(UserCreate, await read_json(request, MAX_BODY_BYTES))
    token = new_access_token()
    user_id = await state_of(request, RegisterState)["users"].submit((new_user.name, hash_token(token)))
    logger.debug("registered user_id=%d", user_id)
    body = UserRegistered(user_id=user_id, access_token=token)
    # The token is shown this once; no cache along the way may keep a copy.
    return JSONResponse(body.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})


routes = [Route("/register", register, methods=["POST"])]


def build(settings: Settings | None = None) -> Starlette:
    return create_app("register", routes, settings, state=user_batcher, autocommit=True)


app = build()
