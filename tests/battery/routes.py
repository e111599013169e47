"""The endpoint inventory the battery walks: every route of every registered function, as served on
one port, with its path parameters filled in."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.http.registry import mount_path, registered_functions
from common.http.routing import Route

_PARAM = re.compile(r"\{([a-z_]+)\}")

# A valid body for each request body model, so a request gets past validation to the database.
VALID_BODIES: Mapping[str, dict[str, Any]] = {
    "UserPatch": {"monthly_budget_usd": "5"},
    "ChatIn": {"message": "What do my notes say?"},
    "SessionIn": {},
    "RenameIn": {"title": "Renamed"},
    "ShareIn": {"email": "someone@example.test"},
}


@dataclass(frozen=True)
class Endpoint:
    function: str
    route: Route

    @property
    def template(self) -> str:
        """The path as the OpenAPI document writes it, e.g. ``/upload/{id}``."""
        return mount_path(self.function) + self.route.openapi_path

    @property
    def method(self) -> str:
        return self.route.method

    def url(self, ids: Mapping[str, str] | None = None) -> str:
        """The path with each parameter taken from ``ids`` (a fresh random UUID when not given)."""
        given = ids or {}
        return _PARAM.sub(lambda m: given.get(m.group(1), str(uuid.uuid4())), self.template) or "/"

    def valid_body(self) -> dict[str, Any]:
        """httpx keywords for a body that passes validation (a small text file for a multipart form);
        raises KeyError naming a body model without an entry in VALID_BODIES."""
        body = self.route.body
        if body is None:
            return {}
        if self.route.body_media == "multipart/form-data":
            return {"files": {"file": ("notes.txt", b"plain words about comets", "text/plain")}}
        return {"json": VALID_BODIES[body.__name__]}

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def all_endpoints() -> list[Endpoint]:
    """Every route of every registered function, in a stable order."""
    return [Endpoint(function, route) for function, routes in registered_functions() for route in routes]


def user_endpoints() -> list[Endpoint]:
    """The routes that take a signed-in user's token."""
    return [endpoint for endpoint in all_endpoints() if endpoint.route.auth == "user"]
