"""The scheduled registry refresh (``POST /registry-refresh``): callable by the scheduler only."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import pydantic

from common.http import RequestContext, Route
from common.registry import RegistryRun


class RunOut(pydantic.BaseModel):
    id: int
    status: Literal["completed", "partial", "failed"]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    figures: dict[str, Any]
    error: str | None


def refresh(ctx: RequestContext) -> Any:
    """Reconcile the document registry with OpenAI once; returns the run's figures (409 when another
    run is in progress)."""
    runtime = ctx.runtime
    return RegistryRun(runtime.database, runtime.openai.files, runtime.prices, runtime.settings.registry).execute()


ROUTES = [
    Route("POST", "/", refresh, auth="service", response=RunOut, errors=(401, 403, 409, 502, 503)),
]
