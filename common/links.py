"""The download link of a record, as every function that gives one out builds it."""

import uuid
from typing import Annotated

from pydantic import Field
from starlette.requests import Request

from common.config import Settings
from common.problems import Problem

#: The largest id `users.id`, a bigint, can hold.
MAX_USER_ID = 2**63 - 1
#: A link's `user`: a larger number names no user, and in a lookup's bigint array it would fail the
#: whole batch of lookups it went with.
LinkUser = Annotated[int, Field(gt=0, le=MAX_USER_ID)]


def links_base(request: Request, settings: Settings) -> str:
    """What every link starts with: PUBLIC_BASE_URL, or the scheme and the Host the client used.

    The Host has passed TrustedHosts; without one there is no link to give (never the socket's address).
    """
    host = request.headers.get("host")
    if settings.public_base_url is None and not host:
        raise Problem(400, "Send a Host header (or set PUBLIC_BASE_URL): the link is built from it.")
    return str(settings.public_base_url or f"{request.url.scheme}://{host}").rstrip("/")


def record_url(base: str, record_id: uuid.UUID, user_id: int) -> str:
    """`<base>/record?id=…&user=…`: the one spelling get_record answers (a UUID and a number need no escaping)."""
    return f"{base}/record?id={record_id}&user={user_id}"
