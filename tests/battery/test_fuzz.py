"""Schemathesis against every endpoint of the OpenAPI document, served on loopback: user endpoints as a
signed-in user, admin endpoints as an admin, the registry refresh as the scheduler. Goal: no server
error and no answer that breaks the document.

Cases per endpoint: ``FUZZ_CASES`` (200; 1,000 under ``./deploy.sh test --long``). Hypothesis stops
earlier on an endpoint whose whole input space is smaller (no parameters and no body)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from tests.battery.conftest import LONG
from tests.battery.figures import record
from tests.battery.stack import Stack
from tests.support.functions import REGISTRY_TOKEN
from tests.support.users import AppUser, UserFactory

FUZZ_CASES = 1000 if LONG else 200
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_dict(build_openapi(registered_functions()))
CASES: Counter[str] = Counter()
STATUSES: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """One keep-alive session for every case (a new connection per case would dominate the run)."""
    with requests.Session() as shared:
        yield shared


@pytest.fixture(scope="module")
def callers(users: UserFactory, stack: Stack) -> dict[str, str]:
    """Who calls which function: a user with a document, an admin, and the scheduler."""
    user, admin = users.create(), users.create(admin=True)
    _seed(stack, user)
    return {"user": user.token, "admin": admin.token, "registry_refresh": REGISTRY_TOKEN}


def _seed(stack: Stack, user: AppUser) -> None:
    """A document and a session to list, and one registry refresh (as the scheduler has run one)."""
    with stack.client(user.token) as http:
        made = http.post("/upload", files={"file": ("seed.txt", b"Comets have tails of dust and gas.", "text/plain")})
        assert made.status_code == 201, made.text
        assert http.post("/sessions", json={}).status_code == 201
    stack.refresh()


def _token_for(case: schemathesis.Case, callers: dict[str, str]) -> str:
    function = case.operation.definition.raw["tags"][0]
    return callers.get(function, callers["user"])


@schema.parametrize()
@settings(max_examples=FUZZ_CASES, deadline=None, database=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_breaks_the_server_or_the_document(case: schemathesis.Case, stack: Stack,
                                                                 callers: dict[str, str],
                                                                 session: requests.Session) -> None:
    # given a generated request (valid or not) for one endpoint, sent by the caller that endpoint is for
    label = f"{case.operation.method.upper()} {case.operation.path}"
    CASES[label] += 1
    # when it is sent to the served functions
    response = case.call(base_url=stack.base, session=session, timeout=30,
                         headers={"Authorization": f"Bearer {_token_for(case, callers)}"})
    STATUSES[(label, response.status_code)] += 1
    # then the answer is not a server error and matches the document
    case.validate_response(response, checks=CHECKS)


def test_every_endpoint_was_fuzzed() -> None:
    # given the fuzzing run above, then every operation of the document was exercised
    operations = {f"{method.upper()} {path}" for path, methods in schema.raw_schema["paths"].items()
                  for method in methods}
    assert set(CASES) == operations
    record("fuzz", cases_per_endpoint=dict(sorted(CASES.items())), endpoints=len(CASES),
           total_cases=sum(CASES.values()), max_examples=FUZZ_CASES,
           server_errors={f"{label} {status}": n for (label, status), n in STATUSES.items() if status >= 500})
