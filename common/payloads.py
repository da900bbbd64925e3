"""Reading request bodies into validated models, with the matching problem on failure."""

import json
from collections.abc import AsyncIterator
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from common.problems import Problem

ModelT = TypeVar("ModelT", bound=BaseModel)


def media_type(request: Request) -> str:
    """The Content-Type without parameters, lower-cased ('' when absent)."""
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def too_large(limit: int) -> Problem:
    return Problem(413, f"The request body is larger than the {limit} bytes this endpoint accepts.")


async def body_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives, refused with 413 once it is known to pass `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise too_large(limit)
        if chunk:
            yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    return b"".join([chunk async for chunk in body_chunks(request, limit)])


async def read_json(request: Request, limit: int) -> object:
    """The parsed JSON body: 415 when it is not declared as JSON, 413 past `limit`, 400 when it does not parse."""
    if not is_json(media_type(request)):
        raise Problem(
            415,
            "The body must be JSON, sent with Content-Type: application/json.",
            headers={"Accept-Post": "application/json"},
        )
    body = await read_body(request, limit)
    try:
        return json.loads(body)
    except RecursionError:
        raise Problem(400, "The body is not JSON this service reads: it is nested too deeply.") from None
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: bad JSON, or a number past int's digit limit
        raise Problem(400, f"The body is not valid JSON: {exc}.") from None


def validate_query(model: type[ModelT], request: Request) -> ModelT:
    """The query string's parameters named by `model`'s fields, validated; 422 for one given twice.

    Parameters the model does not name are ignored.
    """
    data: dict[str, str] = {}
    for name in model.model_fields:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise Problem(
                422,
                f"The parameter {name} is given more than once.",
                errors=[{"field": name, "message": "given more than once"}],
            )
        if values:
            data[name] = values[0]
    return validate(model, data)


def validate(model: type[ModelT], data: object) -> ModelT:
    """`data` as `model`, or a 422 whose `errors` name each offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(map(str, error["loc"])) or "body", "message": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
        raise Problem(422, f"The request is invalid: {summary}.", errors=errors) from None
