"""Request plumbing shared by the stand-in's route modules: services, JSON bodies, query values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import current_app, request

from .errors import invalid_request
from .faults import FaultInjector, RequestLog
from .openapi import RequestSchemas
from .state import State

EXTENSION_KEY = "openai_standin"


@dataclass(frozen=True)
class Services:
    """What the routes work with; stored on the Flask app, never in a module global."""

    state: State
    faults: FaultInjector
    requests: RequestLog
    schemas: RequestSchemas | None = None


def services() -> Services:
    """The services of the app answering the current request."""
    found: Services = current_app.extensions[EXTENSION_KEY]
    return found


def json_body() -> dict[str, Any]:
    """The request's JSON object body ({} when empty); 400 when it is not a JSON object."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise invalid_request("We could not parse the JSON body of your request. (HINT: This likely means you "
                              "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
                              ) from None
    if not isinstance(body, dict):
        raise invalid_request("The JSON body of your request must be an object.")
    return body


def query_list(name: str) -> list[str]:
    """A repeated query parameter, accepting both ``name=`` and ``name[]=`` spellings."""
    return request.args.getlist(name) + request.args.getlist(f"{name}[]")
