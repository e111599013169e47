"""What fuzzing exposed in the shared HTTP plumbing: requests functions-framework's own URL map
answers before any route runs are problem+json too, with a request id."""

from __future__ import annotations

import pytest

from tests.battery.stack import Stack


@pytest.mark.parametrize("path", ["/upload/a%0Ab/access", "/sessions/%0A", "/usage/robots.txt", "/admin/favicon.ico"])
def test_a_path_the_framework_answers_itself_is_a_problem(stack: Stack, path: str) -> None:
    # given a path that never reaches the function's entry point (a control character in a segment,
    # or a file name functions-framework keeps for itself)
    # when it is requested
    with stack.client() as http:
        got = http.get(path)
    # then the answer is a problem+json 404 with the request id, like any unknown path
    assert got.status_code == 404
    assert got.headers["content-type"] == "application/problem+json"
    assert got.json()["code"] == "not_found"
    assert got.headers["X-Request-Id"] == got.json()["request_id"]
