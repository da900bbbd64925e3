"""Who is uploading: a user id and its access token, checked against the stored digest."""

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

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


def unauthorized() -> Problem:
    # One answer for a missing token, an unknown user and a wrong token: none of them is revealed.
    return Problem(
        401,
        "A valid user_id and access_token are required (the token as a form field or Authorization: Bearer).",
        headers={"WWW-Authenticate": 'Bearer realm="records"'},
    )


def parse_user_id(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 0 < int(value) < 2**63:
        raise Problem(
            422,
            "user_id must be a positive integer.",
            errors=[{"field": "user_id", "message": "must be a positive integer"}],
        )
    return int(value)


def stored_digest(engine: Engine, user_id: int) -> bytes | None:
    with Session(engine) as session:
        user = session.get(User, user_id)
        return bytes(user.token_sha256) if user is not None else None


async def authenticate(engine: Engine, credentials: Credentials) -> int:
    """The user id, once the token matches; 401 otherwise, the same whatever went wrong."""
    if not credentials.user_id or not credentials.token:
        raise unauthorized()
    user_id = parse_user_id(credentials.user_id)
    digest = await run_in_threadpool(stored_digest, engine, user_id)
    if not token_matches(credentials.token, digest or _NO_SUCH_DIGEST) or digest is None:
        raise unauthorized()
    return user_id
