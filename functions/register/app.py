"""`POST /register`: create a user and hand out its access token, once."""

import logging
import unicodedata
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.batches import Batcher
from common.config import Settings
from common.models import UserBase
from common.payloads import read_json, validate
from common.security import hash_token, new_access_token
from common.web import AppState, create_app, state_of

from .store import NewUser, insert_users

logger = logging.getLogger("records.register")

# A name of 100 characters is a few hundred bytes of JSON; anything near this is not a registration.
MAX_BODY_BYTES = 16 * 1024
#: Registrations written by one statement at most; far above the concurrency one process sees.
MAX_BATCH = 256


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
