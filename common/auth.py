"""Who is asking: an access token, checked against the stored digest.

Uploads name the user and present its token (`verified_user`); listing and
deleting present the token alone, and its owner is the user (`token_owner`).
Either way a missing token, an unknown user and a wrong token get one and
the same 401, and the token is never accepted in a URL.
"""

import hmac
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, select
from sqlmodel import col
from starlette.datastructures import Headers
from starlette.requests import Request

from common.db import run_in_pool
from common.links import MAX_USER_ID
from common.models import User
from common.problems import Problem
from common.security import hash_token, token_matches

# Compared against when the user does not exist, so that case costs the same as a wrong token.
_NO_SUCH_DIGEST = hash_token("")


@dataclass
class Credentials:
    user_id: str | None = None
    token: str | None = None


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def refuse_token_in_url(request: Request) -> None:
    """400 for `?access_token=`: URLs end up in logs, histories and Referer headers."""
    if "access_token" in request.query_params:
        raise Problem(400, "The access token must not be sent in the URL; use Authorization: Bearer or the form.")


def unauthorized() -> Problem:
    # One answer for a missing token, an unknown user and a wrong token: none of them is revealed.
    return Problem(
        401,
        "A valid access token is required (Authorization: Bearer <access_token>; "
        "uploads may send user_id and access_token as form fields).",
        headers={"WWW-Authenticate": 'Bearer realm="records"'},
    )


#: Digits in the largest id a bigint holds; longer ones are refused before int() reads them.
_MAX_ID_DIGITS = len(str(MAX_USER_ID))


def parse_user_id(value: str) -> int:
    digits = value.lstrip("0")
    if not value.isascii() or not value.isdigit() or len(digits) > _MAX_ID_DIGITS or not 0 < int(value) <= MAX_USER_ID:
        raise Problem(
            422,
            "user_id must be a positive integer.",
            errors=[{"field": "user_id", "message": "must be a positive integer"}],
        )
    return int(value)


_DIGEST_OF_USER = select(col(User.token_sha256)).where(col(User.id) == bindparam("user_id"))


def stored_digest(connection: Connection, user_id: int) -> bytes | None:
    digest: bytes | None = connection.execute(_DIGEST_OF_USER, {"user_id": user_id}).scalar()
    return bytes(digest) if digest is not None else None


def verified_user(connection: Connection, credentials: Credentials) -> int:
    """The user id, once the token matches; 401 otherwise, the same whatever went wrong.

    On the caller's connection, so that a function may check and act in one hop to a worker thread.
    """
    if not credentials.user_id or not credentials.token:
        raise unauthorized()
    user_id = parse_user_id(credentials.user_id)
    digest = stored_digest(connection, user_id)
    if not token_matches(credentials.token, digest or _NO_SUCH_DIGEST) or digest is None:
        raise unauthorized()
    return user_id


#: FOR SHARE: a rotation (an UPDATE of the row) waits for the transaction that read it, so an
#: upload is either stored before the rotation answers or finds the token replaced.
_DIGEST_OF_USER_HELD = _DIGEST_OF_USER.with_for_update(read=True)


def token_still_current(connection: Connection, user_id: int, digest: bytes) -> bool:
    """Whether `digest` is still the user's token, held so to the end of the connection's transaction."""
    current: bytes | None = connection.execute(_DIGEST_OF_USER_HELD, {"user_id": user_id}).scalar()
    return current is not None and hmac.compare_digest(bytes(current), digest)


_OWNER_OF_DIGEST = select(col(User.id)).where(col(User.token_sha256) == bindparam("digest"))


def owner_of_digest(connection: Connection, digest: bytes) -> int | None:
    user_id: int | None = connection.execute(_OWNER_OF_DIGEST, {"digest": digest}).scalar()
    return user_id


def bearer_digest(request: Request) -> bytes:
    """The SHA-256 of the request's Bearer token; 401 without one, 400 for one in the URL.

    Its owner is looked up by this digest through a unique index. The lookup's
    timing can only tell about digests, which nobody can steer towards a stored
    one, so it reveals nothing about any token (the usual way API tokens are looked up).
    """
    refuse_token_in_url(request)
    token = bearer_token(request.headers)
    if token is None:
        raise unauthorized()
    return hash_token(token)


def owner_by_digest(engine: Engine, digest: bytes) -> int:
    """The id of the user whose token has `digest`; 401 otherwise."""
    with engine.connect() as connection:
        user_id = owner_of_digest(connection, digest)
    if user_id is None:
        raise unauthorized()
    return user_id


async def token_owner(request: Request, engine: Engine) -> int:
    """The id of the user whose Bearer token this is; 401 otherwise (see `bearer_digest`)."""
    return await run_in_pool(engine, owner_by_digest, bearer_digest(request))
