"""Defects the battery found outside the HTTP layer, now fixed and kept as regression tests: a NUL
byte in a query or JSON text is bad input (400), not an outage; a failing health report is the body
the document declares for its 503; the Markdown export's media type is declared."""

from __future__ import annotations

import json

import pytest

from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from tests.battery.stack import Stack
from tests.support.openapi import assert_matches_openapi
from tests.support.users import UserFactory


@pytest.mark.parametrize(("path", "admin"), [("/upload?cursor=%00%ff", False), ("/sessions?cursor=a%00b", False),
                                             ("/admin/users?q=a%00b", True)])
def test_a_nul_byte_in_a_query_is_a_client_error(stack: Stack, users: UserFactory, path: str, admin: bool) -> None:
    # given a signed-in caller
    caller = users.create(admin=admin)
    # when a query text holds a NUL byte
    with stack.client(caller.token) as http:
        got = http.get(path)
    # then it is refused as bad input, not answered as an outage
    assert 400 <= got.status_code < 500, got.text


def test_a_failing_health_report_matches_the_document(stack: Stack, users: UserFactory) -> None:
    # given an admin, and no registry refresh run yet (so the registry check fails)
    admin = users.create(admin=True)
    # when the admin asks for the health report
    with stack.client(admin.token) as http:
        got = http.get("/admin/health")
    # then it is a 503 whose body is what the document declares for it
    assert got.status_code == 503, got.text
    assert_matches_openapi(build_openapi(registered_functions()), "GET", "/admin/health", 503, json.loads(got.text),
                           content_type=got.headers["content-type"].split(";")[0])


def test_a_nul_byte_in_a_json_body_is_a_client_error(stack: Stack, users: UserFactory) -> None:
    # given a document of the caller
    owner = users.create()
    with stack.client(owner.token) as http:
        doc = http.post("/upload", files={"file": ("n.txt", b"Notes on the NUL byte.", "text/plain")})
        assert doc.status_code == 201, doc.text
        # when a share names an email holding a NUL byte
        got = http.post(f"/upload/{doc.json()['id']}/access", json={"email": "a\u0000b@example.test"})
    # then it is refused as bad input, not answered as an outage
    assert 400 <= got.status_code < 500, got.text


def test_a_markdown_export_is_declared_in_the_document(stack: Stack, users: UserFactory) -> None:
    # given a session of the caller
    owner = users.create()
    with stack.client(owner.token) as http:
        made = http.post("/sessions", json={"title": "Exported"})
        assert made.status_code == 201, made.text
        # when it is exported as Markdown
        got = http.get(f"/sessions/{made.json()['id']}/export", params={"format": "md"})
    # then the answer's media type is one the document declares for it
    assert got.status_code == 200, got.text
    declared = build_openapi(registered_functions())["paths"]["/sessions/{id}/export"]["get"]["responses"]["200"]
    assert got.headers["content-type"].split(";")[0] in declared["content"]
