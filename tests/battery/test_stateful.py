"""Stateful fuzzing along the document's links: schemathesis creates a document or a session, then
follows the links to read, share, rename and delete what it made (and to revoke a share it made),
as a signed-in user. Goal: no server error and no answer that breaks the document, and the links
are really followed (reads of what was just made answer 2xx)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, settings

from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from tests.battery.figures import record
from tests.battery.stack import Stack
from tests.battery.test_fuzz import CHECKS
from tests.support.users import UserFactory

# The same under --long: longer runs meet Hypothesis's replay check (a replayed scenario draws
# against a server whose state has moved on, which it reports as a flaky strategy).
SCENARIOS = 15
STEPS_PER_SCENARIO = 5


def _linked_document() -> dict[str, Any]:
    """The document restricted to the functions whose creations link onwards (upload, sessions)."""
    document = build_openapi(registered_functions())
    document["paths"] = {path: item for path, item in document["paths"].items()
                         if path.startswith(("/upload", "/sessions"))}
    return document


def test_following_links_from_what_was_created_breaks_nothing(stack: Stack, users: UserFactory) -> None:
    # given the linked part of the document and a signed-in user
    user = users.create()
    answered: Counter[tuple[str, int]] = Counter()
    base = schemathesis.openapi.from_dict(_linked_document()).as_state_machine()

    class Links(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": stack.base, "headers": {"Authorization": f"Bearer {user.token}"}, "timeout": 30}

        def validate_response(self, response: Any, case: schemathesis.Case, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            label = f"{case.operation.method.upper()} {case.operation.path}"
            answered[(label, response.status_code)] += 1
            case.validate_response(response, checks=CHECKS)

    # when schemathesis runs scenarios of create-then-use steps
    # Generation only: what a scenario can draw depends on what the server holds by then, so
    # replaying or shrinking a scenario cannot draw the same data (Hypothesis calls that flaky).
    Links.run(settings=settings(max_examples=SCENARIOS, stateful_step_count=STEPS_PER_SCENARIO, deadline=None,
                                database=None, derandomize=True, phases=[Phase.generate],
                                suppress_health_check=list(HealthCheck)))
    # then no check failed (run raises otherwise), and links were followed to what was created
    followed = {label: n for (label, status), n in answered.items()
                if "{id}" in label and 200 <= status < 300}
    record("stateful", scenarios=SCENARIOS, steps=sum(answered.values()), linked_successes=sum(followed.values()),
           server_errors=sum(n for (_, status), n in answered.items() if status >= 500))
    assert followed, dict(answered)
