"""The one statement rotate_token runs: a user's token digest, swapped for another."""

from sqlalchemy import Engine, bindparam, update
from sqlmodel import col

from common.db import run_in_pool
from common.models import User

_SWAP = (
    update(User)
    .where(col(User.token_sha256) == bindparam("old"))
    .values(token_sha256=bindparam("new"))
    .returning(col(User.id))
)


def swap_digest(engine: Engine, old: bytes, new: bytes) -> int | None:
    """The user whose digest was `old` and is `new` now; None when no user had `old`."""
    with engine.connect() as connection:
        user_id: int | None = connection.execute(_SWAP, {"old": old, "new": new}).scalar()
    return user_id


async def replace_digest(engine: Engine, old: bytes, new: bytes) -> int | None:
    return await run_in_pool(engine, swap_digest, old, new)
