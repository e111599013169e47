"""The scheduled registry refresh (``POST /registry-refresh``): callable by the scheduler only.

One run reconciles the documents with OpenAI and, first, performs its housekeeping steps: chat
turns left pending past the chat timeout are settled from OpenAI (:mod:`common.turn_settlement`),
and vector stores no row claims are swept (:mod:`common.openai_orphans`). Their figures are the run's.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

import pydantic

from common.http import RequestContext, Route
from common.registry import RegistryRun, RunStep
from common.runtime import Runtime


class RunOut(pydantic.BaseModel):
    id: int
    status: Literal["completed", "partial", "failed"]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    figures: dict[str, Any]
    error: str | None


def run_steps(runtime: Runtime, *, stale_margin_seconds: int | None = None) -> list[RunStep]:
    """The refresh's housekeeping steps: settle chat turns pending longer than the chat timeout plus
    ``stale_margin_seconds`` (default :data:`common.turn_settlement.STALE_MARGIN_SECONDS`), then sweep
    orphan vector stores older than the registry's grace period."""
    from common.openai_orphans import sweep_orphan_stores
    from common.turn_settlement import STALE_MARGIN_SECONDS, settle_stale_turns

    settings = runtime.settings
    margin = STALE_MARGIN_SECONDS if stale_margin_seconds is None else stale_margin_seconds
    older_than = max(1, math.ceil(settings.chat.timeout_seconds) + margin)
    db, gateway = runtime.database, runtime.openai
    return [
        ("settle_turns", lambda: settle_stale_turns(db, gateway.chat, runtime.prices, model=settings.openai.model,
                                                    older_than_seconds=older_than).as_dict()),
        ("sweep_orphan_stores", lambda: sweep_orphan_stores(db, gateway.files,
                                                            settings.registry.grace_seconds).as_dict()),
    ]


def refresh(ctx: RequestContext) -> Any:
    """Reconcile the document registry with OpenAI once, settling stale chat turns and sweeping
    orphan stores first; returns the run's figures (409 when another run is in progress)."""
    runtime = ctx.runtime
    return RegistryRun(runtime.database, runtime.openai.files, runtime.prices, runtime.settings.registry,
                       steps=run_steps(runtime)).execute()


ROUTES = [
    Route("POST", "/", refresh, auth="service", response=RunOut, errors=(401, 403, 409, 502, 503)),
]
