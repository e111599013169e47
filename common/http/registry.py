"""Which functions exist, where their routes live, and where each is mounted.

:data:`FUNCTIONS` lists every deployed function explicitly, as ``name -> "module:ATTRIBUTE"`` of its
list of :class:`~common.http.routing.Route`. Add a function here when its routes exist; the OpenAPI
document (``python -m common.http.openapi``) covers exactly the functions listed.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

from common.http.routing import Route

FUNCTIONS: Mapping[str, str] = {
    "upload": "common.api.upload:ROUTES",
    "chat": "common.api.chat:ROUTES",
    "sessions": "common.api.sessions:ROUTES",
    "usage": "common.api.usage:ROUTES",
    "admin": "common.api.admin:ROUTES",
    "registry_refresh": "common.api.registry_refresh:ROUTES",
}


def mount_path(function: str) -> str:
    """Where the one-port local server (and a gateway) mounts a function: ``registry_refresh`` ->
    ``/registry-refresh``."""
    return "/" + function.replace("_", "-")


def load_routes(spec: str) -> list[Route]:
    """Import ``"module:ATTRIBUTE"`` and return its routes; raises ImportError, AttributeError or
    TypeError naming the spec when it does not hold a list of routes."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"a routes spec is 'module:ATTRIBUTE', got {spec!r}")
    routes = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(routes, Sequence) or not all(isinstance(route, Route) for route in routes):
        raise TypeError(f"{spec} is not a list of Route")
    return list(routes)


def registered_functions(functions: Mapping[str, str] | None = None) -> list[tuple[str, list[Route]]]:
    """``(name, routes)`` of every listed function, in a stable order."""
    listed = FUNCTIONS if functions is None else functions
    return [(name, load_routes(spec)) for name, spec in sorted(listed.items())]
