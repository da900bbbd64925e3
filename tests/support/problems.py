"""Assertions about RFC 9457 problem responses, shared by function and gateway tests."""

from typing import Any

import httpx2

PROBLEM_MEMBERS = {"type", "title", "status", "detail"}


def assert_problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    """`response` is a problem of `status` with every required member and no traceback.

    Its `request_id` is the response's X-Request-ID; the body is returned without it,
    so that problems can be compared across requests.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_MEMBERS
    assert body["status"] == status
    assert body["detail"]
    assert "Traceback" not in response.text
    assert body.pop("request_id") == response.headers["x-request-id"]
    return body
