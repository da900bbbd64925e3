"""Errors as RFC 9457 problem details (`application/problem+json`).

Handlers raise `Problem`; the exception handlers registered by
`common.web.create_app` turn it, Starlette's own `HTTPException`s (404, 405,
413) and database outages into problem responses. Nothing else reaches the
client: an unexpected exception becomes a bare 500 without a traceback.
"""

import http
import logging
from collections.abc import Mapping
from typing import Any

from asgi_correlation_id import correlation_id
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from common.db import is_unavailable
from common.metrics import DATABASE_ERRORS

logger = logging.getLogger("records.problems")

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_S = 5


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class Problem(HTTPException):
    """An HTTP error with a human-readable `detail` and optional extension members."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.extensions = extensions


def problem_response(
    status_code: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    body = {
        "type": "about:blank",
        "title": http.HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        **({"request_id": request_id} if (request_id := correlation_id.get()) else {}),
        **(extensions or {}),
    }
    return ProblemResponse(body, status_code=status_code, headers=headers)


def retry_later(detail: str, status_code: int = 503) -> "Problem":
    """A problem that passes, with when to retry: 503 when the trouble is ours, 429 when it is the client's own load."""
    return Problem(status_code, detail, headers={"Retry-After": str(RETRY_AFTER_S)})


def no_such_record() -> "Problem":
    """The one 404 for an unknown record and another user's alike, so that ids cannot be probed."""
    return Problem(404, "No such record for this user.")


# Starlette raises these with the bare reason phrase; say what actually went wrong.
# The gateway answers the same with the same words (nginx/includes/problems.conf; a test checks).
DEFAULT_DETAILS = {
    404: "There is nothing at this path.",
    405: "This path does not accept that method; see the Allow header.",
    413: "The request body is larger than this endpoint accepts.",
}


def problem_of(problem: Problem) -> ProblemResponse:
    """The response a raised `problem` becomes."""
    return problem_response(problem.status_code, problem.detail, problem.headers, problem.extensions)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, Problem):
        return problem_of(exc)
    detail = exc.detail
    if detail == http.HTTPStatus(exc.status_code).phrase:
        detail = DEFAULT_DETAILS.get(exc.status_code, detail)
    return problem_response(exc.status_code, detail, exc.headers)


def internal_error() -> ProblemResponse:
    return problem_response(500, "The server failed to handle this request.")


async def database_error_handler(request: Request, exc: Exception) -> Response:
    """An outage is the client's 503, not our bug: handled here so it is not re-raised as one."""
    if is_unavailable(exc):
        DATABASE_ERRORS.labels("unavailable").inc()
        logger.warning("database unavailable: %s", type(exc).__name__)
        return problem_of(retry_later("The database is not reachable right now; try again shortly."))
    DATABASE_ERRORS.labels("other").inc()
    logger.error("database error", exc_info=exc)
    return internal_error()


async def unhandled_exception_handler(request: Request, exc: Exception) -> Response:
    # ServerErrorMiddleware re-raises after this, so the traceback reaches the log, never the client.
    return internal_error()


EXCEPTION_HANDLERS = {
    HTTPException: http_exception_handler,
    DBAPIError: database_error_handler,
    PoolTimeoutError: database_error_handler,
    Exception: unhandled_exception_handler,
}
