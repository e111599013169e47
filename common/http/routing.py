"""Routes of one function, relative to the function's own root.

A path template is ``/`` or segments such as ``/{id:uuid}/access/{user_id:uuid}``. Converters:
``str`` (the default: one segment), ``uuid`` (a :class:`uuid.UUID`), ``int``. A segment that does not
convert does not match, so a malformed id answers 404 exactly like a missing one. ``/x``, ``/x/``
and an empty path are the same path (a mounted function sees ``""`` for its root).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pydantic

if TYPE_CHECKING:
    from common.http.app import RequestContext

Auth = Literal["user", "service", "none"]
Handler = Callable[["RequestContext"], Any]

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"^\{([a-z_][a-z0-9_]*)(?::([a-z]+))?\}$")
_STATIC = re.compile(r"^[A-Za-z0-9._~-]+$")


def _to_uuid(raw: str) -> uuid.UUID:
    value = uuid.UUID(raw)
    if str(value) != raw.lower():  # only the canonical 8-4-4-4-12 form
        raise ValueError("not a canonical UUID")
    return value


def _to_int(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError("not a non-negative integer")
    return int(raw)


CONVERTERS: Mapping[str, Callable[[str], Any]] = {"str": str, "uuid": _to_uuid, "int": _to_int}
OPENAPI_PARAM_SCHEMAS: Mapping[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer", "minimum": 0},
}


@dataclass(frozen=True)
class PathParam:
    name: str
    converter: str


@dataclass(frozen=True)
class ResponseDoc:
    """A response a route documents besides its JSON success body and its problem+json errors: a
    status answered with another media type (``model`` None: a text body) or with a body of its own
    (e.g. a health report on 503). Documentation only: the handler produces it."""

    status: int
    media: str
    model: type[pydantic.BaseModel] | None = None
    description: str = ""


@dataclass(frozen=True)
class Route:
    """One endpoint of a function: method, path template, handler and the contract around it.

    ``body``/``query`` models are validated before the handler runs (a ``body`` whose ``body_media`` is
    not JSON, e.g. ``multipart/form-data``, only documents the form: the handler reads it); ``response`` and ``errors`` (extra
    HTTP statuses the handler may answer with) document the endpoint in the OpenAPI document.
    ``events`` names the Server-Sent Events the route may stream instead (``(event, data model)``
    pairs, in the order they come): the success response then also offers ``text/event-stream``.
    ``codes`` describes error statuses of this route with their stable codes (``(status, text)``).
    ``responses`` documents other bodies it answers with (:class:`ResponseDoc`), e.g. 503 for a
    health report that failed or another media type; statuses below 400 in ``errors`` carry the
    route's own ``response`` body.
    """

    method: str
    path: str
    handler: Handler
    auth: Auth = "user"
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    response: type[pydantic.BaseModel] | None = None
    status: int = 200
    summary: str = ""
    errors: Sequence[int] = ()
    body_media: str = "application/json"
    events: tuple[tuple[str, type[pydantic.BaseModel]], ...] = ()
    codes: tuple[tuple[int, str], ...] = ()
    responses: tuple[ResponseDoc, ...] = ()
    segments: tuple[str | PathParam, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        method = self.method.upper()
        if method not in _METHODS:
            raise ValueError(f"unsupported method {self.method!r}")
        object.__setattr__(self, "method", method)
        if self.auth not in ("user", "service", "none"):
            raise ValueError(f"unknown auth {self.auth!r}")
        object.__setattr__(self, "segments", parse_template(self.path))

    @property
    def success_statuses(self) -> tuple[int, ...]:
        """Every status whose body is the route's own response (or stream), in order."""
        return tuple(sorted({self.status, *(s for s in self.errors if s < 400)}))

    @property
    def path_params(self) -> tuple[PathParam, ...]:
        return tuple(segment for segment in self.segments if isinstance(segment, PathParam))

    @property
    def openapi_path(self) -> str:
        """The template as OpenAPI writes it: ``/{id}`` (converters dropped), ``""`` for the root."""
        return "".join("/" + (f"{{{s.name}}}" if isinstance(s, PathParam) else s) for s in self.segments)

    def match(self, segments: Sequence[str]) -> dict[str, Any] | None:
        """The converted path parameters when ``segments`` match this route, else None."""
        if len(segments) != len(self.segments):
            return None
        params: dict[str, Any] = {}
        for template, actual in zip(self.segments, segments, strict=True):
            if isinstance(template, PathParam):
                try:
                    params[template.name] = CONVERTERS[template.converter](actual)
                except ValueError:
                    return None
            elif template != actual:
                return None
        return params


def parse_template(path: str) -> tuple[str | PathParam, ...]:
    """Split ``/a/{id:uuid}`` into static segments and typed parameters; raises ValueError."""
    if path not in ("", "/") and not path.startswith("/"):
        raise ValueError(f"a route path starts with '/': {path!r}")
    segments: list[str | PathParam] = []
    names: set[str] = set()
    for part in split_path(path):
        found = _PARAM.match(part)
        if found:
            name, converter = found.group(1), found.group(2) or "str"
            if converter not in CONVERTERS:
                raise ValueError(f"unknown converter {converter!r} in {path!r}")
            if name in names:
                raise ValueError(f"duplicate parameter {name!r} in {path!r}")
            names.add(name)
            segments.append(PathParam(name, converter))
        elif _STATIC.match(part):
            segments.append(part)
        else:
            raise ValueError(f"invalid segment {part!r} in {path!r}")
    return tuple(segments)


def split_path(path: str) -> list[str]:
    """``/a/b/``, ``/a/b`` and ``a/b`` -> ``["a", "b"]``; ``""`` and ``/`` -> ``[]``."""
    return [part for part in path.strip("/").split("/") if part] if path.strip("/") else []


@dataclass(frozen=True)
class Match:
    route: Route
    params: dict[str, Any]


class Router:
    """Finds the route for a method and path: a :class:`Match`, or the allowed methods of the path."""

    def __init__(self, routes: Sequence[Route]) -> None:
        seen: set[tuple[str, tuple[Any, ...]]] = set()
        for route in routes:
            key = (route.method, tuple(s if isinstance(s, str) else ":" for s in route.segments))
            if key in seen:
                raise ValueError(f"two routes for {route.method} {route.path}")
            seen.add(key)
        self.routes = tuple(routes)

    def resolve(self, method: str, path: str) -> Match | list[str]:
        """The matching route; else the methods the path allows (empty: an unknown path)."""
        segments = split_path(path)
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(segments)
            if params is None:
                continue
            if route.method == method:
                return Match(route, params)
            allowed.append(route.method)
        return allowed
