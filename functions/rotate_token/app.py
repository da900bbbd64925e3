"""`POST /token`: replace a leaked access token with a new one.

The caller presents the current token as Bearer; the answer is a new token,
shown this once. From the moment the answer is sent the old token is refused
everywhere (upload, list, delete, and here), because every function checks
the stored digest and it is the new token's now. The swap is one UPDATE whose
WHERE names the old digest, so of concurrent rotations with one token exactly
one succeeds: the others find no such digest and get the same 401 as a wrong
token.
"""

import logging

from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.auth import bearer_token, refuse_token_in_url, unauthorized
from common.config import Settings
from common.security import hash_token, new_access_token
from common.web import create_app, engine_of

from .store import replace_digest

logger = logging.getLogger("records.rotate_token")


class TokenRotated(BaseModel):
    """The answer to `POST /token`."""

    user_id: int
    access_token: str


async def rotate_token(request: Request) -> Response:
    refuse_token_in_url(request)
    token = bearer_token(request.headers)
    if token is None:
        raise unauthorized()
    new_token = new_access_token()
    user_id = await replace_digest(engine_of(request), hash_token(token), hash_token(new_token))
    if user_id is None:
        raise unauthorized()
    logger.info("rotated the token of user_id=%d", user_id, extra={"user_id": user_id})
    body = TokenRotated(user_id=user_id, access_token=new_token)
    # The token is shown this once; no cache along the way may keep a copy.
    return JSONResponse(body.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})


routes = [Route("/token", rotate_token, methods=["POST"])]


def build(settings: Settings | None = None) -> Starlette:
    # One statement, atomic on its own.
    return create_app("rotate_token", routes, settings, autocommit=True, check_host=False)


app = build()
