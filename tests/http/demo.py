"""A tiny demo function for the HTTP plumbing tests: models, handlers, routes and the main.py text.

The real functions are written elsewhere; these routes exist only to exercise ``common.http``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import flask
import pydantic

from common.errors import NotFoundError
from common.http import RequestContext, Route
from common.runtime import Runtime, lazy_runtime
from common.settings import Settings

log = logging.getLogger("tests.demo")

MISSING_ID = uuid.UUID("00000000-0000-4000-8000-000000000404")
CREATED_AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


class ItemIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    name: str = pydantic.Field(min_length=1, max_length=100)
    price: Decimal = pydantic.Field(ge=0, max_digits=12, decimal_places=4)
    quantity: int = pydantic.Field(default=1, ge=1)
    tags: list[str] = []


class ItemOut(pydantic.BaseModel):
    id: uuid.UUID
    name: str
    price: Decimal
    quantity: int
    owner_id: uuid.UUID
    created_at: dt.datetime


class ItemPage(pydantic.BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class ListQuery(pydantic.BaseModel):
    limit: int = pydantic.Field(default=20, ge=1, le=100)
    cursor: str | None = None


class WhoAmI(pydantic.BaseModel):
    user_id: uuid.UUID
    email: str
    role: str
    session_id: str
    app_metadata: dict[str, Any]


class RunFigures(pydantic.BaseModel):
    role: str
    checked: int


def _item(ctx: RequestContext, item_id: uuid.UUID, name: str = "widget", price: Decimal = Decimal("12.50"),
          quantity: int = 1) -> ItemOut:
    return ItemOut(id=item_id, name=name, price=price, quantity=quantity, owner_id=uuid.UUID(ctx.user_id or ""),
                   created_at=CREATED_AT)


def list_items(ctx: RequestContext) -> ItemPage:
    """My items."""
    assert isinstance(ctx.query, ListQuery)
    items = [_item(ctx, uuid.UUID(int=i + 1)) for i in range(min(ctx.query.limit, 2))]
    return ItemPage(items=items, next_cursor=None)


def create_item(ctx: RequestContext) -> tuple[ItemOut, int, dict[str, str]]:
    """Create an item."""
    assert isinstance(ctx.body, ItemIn)
    item = _item(ctx, uuid.uuid4(), ctx.body.name, ctx.body.price, ctx.body.quantity)
    log.info("item created")
    return item, 201, {"Location": f"/demo/{item.id}"}


def get_item(ctx: RequestContext) -> ItemOut:
    """One item."""
    if ctx.path_params["id"] == MISSING_ID:
        raise NotFoundError("No such item.")
    return _item(ctx, ctx.path_params["id"])


def revoke_access(ctx: RequestContext) -> None:
    """Revoke a user's access to an item."""
    assert isinstance(ctx.path_params["id"], uuid.UUID)
    assert isinstance(ctx.path_params["user_id"], uuid.UUID)
    return None


def whoami(ctx: RequestContext) -> dict[str, Any]:
    """The caller's verified claims."""
    assert ctx.identity is not None
    claims = ctx.identity.claims
    return {"user_id": claims["sub"], "email": claims["email"], "role": claims["role"],
            "session_id": claims["session_id"], "app_metadata": claims.get("app_metadata", {})}


def boom(ctx: RequestContext) -> Any:
    """Fails with an unexpected error whose message must not reach the caller."""
    raise RuntimeError("internal detail: password=hunter2 at db-host-7")


def wrong_shape(ctx: RequestContext) -> dict[str, Any]:
    """Answers something that does not match its documented response."""
    return {"id": "not-a-uuid", "name": 42}


def stream(ctx: RequestContext) -> flask.Response:
    """Server-sent events, produced after the handler has returned."""
    def events() -> Iterator[str]:
        for n in range(2):
            log.info("stream event %d", n)
            yield f"data: {n}\n\n"
        yield "event: done\ndata: {}\n\n"
    return flask.Response(events(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


def refresh(ctx: RequestContext) -> RunFigures:
    """Scheduler-only run."""
    assert ctx.identity is not None
    return RunFigures(role=ctx.identity.role, checked=3)


ROUTES = [
    Route("GET", "/", list_items, query=ListQuery, response=ItemPage),
    Route("POST", "/", create_item, body=ItemIn, response=ItemOut, status=201),
    Route("GET", "/me", whoami, response=WhoAmI),
    Route("GET", "/{id:uuid}", get_item, response=ItemOut),
    Route("DELETE", "/{id:uuid}/access/{user_id:uuid}", revoke_access, status=204, errors=[409]),
    Route("GET", "/boom", boom, auth="none"),
    Route("GET", "/wrong-shape", wrong_shape, auth="none", response=ItemOut),
    Route("GET", "/stream", stream, auth="none"),
    Route("POST", "/refresh", refresh, auth="service", response=RunFigures),
]

REFRESH_ROUTES = [Route("POST", "/", refresh, auth="service", response=RunFigures)]


def runtime_from_env() -> Callable[[], Runtime]:
    """A runtime read from the environment on the function's first request (the test sets it)."""
    return lazy_runtime(lambda: Runtime(Settings.from_env()))


MAIN_PY = '''\
from common.http import FunctionApp
from tests.http.demo import {routes}, runtime_from_env

_app = FunctionApp("{name}", {routes}, runtime_factory=runtime_from_env())


def {name}(request):
    return _app.handle(request)
'''


def main_py_source(name: str, routes: str = "ROUTES") -> str:
    """The text of a two-line-entry-point ``main.py`` serving ``tests.http.demo.<routes>`` as ``name``."""
    return MAIN_PY.format(name=name, routes=routes)
