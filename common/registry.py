"""The registry refresh: one run reconciles the documents table with what OpenAI holds.

A run takes the one running slot (a lease in ``registry_runs``; a second run gets
AlreadyRunningError), accrues the day's vector-storage cost once, then pages through every store's
files and the project's files. Each page is decided by one SQL call, which returns the OpenAI actions
to take (remove a file, detach it from a store, attach an adopted file). An error on one file is
counted and the run goes on. When the time budget runs out the run stops cleanly between pages and
leaves a cursor; the next run continues from it. One summary log line (event ``registry_run``)
carries the figures the alerts read.

Before the pages, a run performs its *steps*: named housekeeping passes handed in by the caller
(the scheduled function settles stale chat turns and sweeps orphan vector stores), each returning
figures that are added to the run's; a step that fails is counted as an error and the run goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from common.db.base import Database, Identity
from common.documents import ensure_vector_store
from common.errors import AppError
from common.logging import log_event
from common.settings import RegistrySettings

if TYPE_CHECKING:  # imported by the first run, not at cold start
    from common.openai.files import DocumentFiles, Store
    from common.pricing import PriceTable

log = logging.getLogger(__name__)
SERVICE = Identity.service()
# A housekeeping pass of a run: its name and a callable returning its figures.
RunStep = tuple[str, Callable[[], Mapping[str, int]]]
STORE_PAGE_SIZE = 100
FILE_PAGE_SIZE = 1000
MAX_ERROR_SAMPLES = 20
# The running slot's lease, renewed by every page's SQL call. Shorter than the 5-minute schedule, so
# the scheduled run after one that died (killed, or cut off from the database) takes the slot over
# instead of answering 409; a run still alive after such a takeover fails at its next call (DC409).
LEASE_SECONDS = 120


@dataclass
class RunFigures:
    stores: int = 0
    files_seen: int = 0
    pages: int = 0
    updated: int = 0
    adopted: int = 0
    removed: int = 0
    detached: int = 0
    deletes_finished: int = 0
    missing: int = 0
    interrupted: int = 0
    shares_placed: int = 0
    unknown: int = 0
    storage_rows: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    duration_ms: int = 0
    steps: dict[str, int] = field(default_factory=dict)

    def recorded(self) -> dict[str, Any]:
        """The figures as the run records them (the steps' figures beside the others)."""
        figures = asdict(self)
        return {**figures.pop("steps"), **figures}

    def error(self, what: str, exc: AppError) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{what}: {exc.code}")
        log.warning("registry refresh: %s failed: %s %s", what, exc.code, exc.detail)


class _OutOfTime(Exception):
    """The time budget is spent: stop between pages and leave a cursor."""

    def __init__(self, cursor: dict[str, Any]) -> None:
        super().__init__("time budget spent")
        self.cursor = cursor


class RegistryRun:
    """One run; build it and call :meth:`execute`."""

    def __init__(self, db: Database, files: DocumentFiles, prices: PriceTable, settings: RegistrySettings, *,
                 clock: Callable[[], float] = time.monotonic, today: Callable[[], dt.date] | None = None,
                 steps: Sequence[RunStep] = ()) -> None:
        self.db, self.files, self.prices, self.settings = db, files, prices, settings
        self.steps = tuple(steps)
        self.clock = clock
        self.today = today or (lambda: dt.datetime.now(dt.timezone.utc).date())
        self.figures = RunFigures()
        self.attached: list[dict[str, Any]] = []
        self.lease = LEASE_SECONDS

    def _call(self, function: str, args: dict[str, Any]) -> Any:
        return self.db.call(function, args, SERVICE)

    def execute(self) -> dict[str, Any]:
        """Run once; returns the recorded run (status, figures). Raises AlreadyRunningError when
        another run holds the lease; any other failure is recorded on the run and re-raised."""
        self.started = self.clock()
        begun = self._call("registry_begin_run", {"p_lease_seconds": self.lease})
        self.run_id, self.deadline = begun["run_id"], self.started + self.settings.time_budget_seconds
        cursor: dict[str, Any] = begun["cursor"] or {"phase": "stores"}
        try:
            self._run_steps()
            stores = [s for page in self.files.store_pages() for s in page]
            self.figures.stores = len(stores)
            if begun["storage_day"] != self.today().isoformat():
                self._accrue_storage(stores)
            if cursor["phase"] == "stores":
                self._stores_phase(stores, cursor)
                cursor = {"phase": "files"}
            self._finish_pending_deletes()
            self._files_phase(cursor)
        except _OutOfTime as stop:
            return self._finish("partial", cursor=stop.cursor)
        except AppError as exc:
            self.figures.error("run", exc)
            self._finish("failed", cursor=cursor, error=f"{exc.code}: {exc.detail}")
            raise
        return self._finish("completed", cycle_complete=True)

    def _run_steps(self) -> None:
        for name, step in self.steps:
            try:
                figures = step()
            except AppError as exc:
                self.figures.error(name, exc)
                continue
            for key, value in figures.items():
                self.figures.steps[key] = self.figures.steps.get(key, 0) + value

    def _check_time(self, cursor: dict[str, Any]) -> None:
        if self.clock() >= self.deadline:
            raise _OutOfTime(cursor)

    def _accrue_storage(self, stores: list[Store]) -> None:
        """A day's storage cost per store; the free allowance is shared project-wide, so each store
        pays for its share of the bytes above it. The database splits each store's cost over the
        documents it holds and charges each document's owner (a shared copy is the owner's cost)."""
        total = sum(s.usage_bytes for s in stores)
        total_gb_days = self.prices.gb_days(total)
        billable = self.prices.storage_cost(total_gb_days)
        rows = []
        for s in stores:
            if not s.user_id or s.usage_bytes == 0:
                continue
            share = Decimal(s.usage_bytes) / Decimal(total)
            rows.append({"vector_store_id": s.vector_store_id, "usage_bytes": s.usage_bytes,
                         "gb_days": self.prices.gb_days(s.usage_bytes),
                         "cost_usd": (billable * share).quantize(Decimal("0.00000001"))})
        self.figures.storage_rows = self._call("registry_record_storage",
                                               {"p_day": self.today().isoformat(), "p_rows": rows})

    def _stores_phase(self, stores: list[Store], cursor: dict[str, Any]) -> None:
        resume_store, after = cursor.get("store"), cursor.get("after")
        if resume_store and resume_store in {s.vector_store_id for s in stores}:
            stores = stores[[s.vector_store_id for s in stores].index(resume_store):]
        for store in stores:
            page_after = after if store.vector_store_id == resume_store else None
            for page in self.files.store_file_pages(store.vector_store_id, page_size=STORE_PAGE_SIZE, after=page_after):
                self._check_time({"phase": "stores", "store": store.vector_store_id, "after": page_after})
                result = self._call("registry_apply_store_page", {
                    "p_run_id": self.run_id, "p_vector_store_id": store.vector_store_id,
                    "p_store_user_id": store.user_id, "p_grace_seconds": self.settings.grace_seconds,
                    "p_lease_seconds": self.lease,
                    "p_files": [{"file_id": f.file_id, "status": f.status, "usage_bytes": f.usage_bytes,
                                 "error": f.error, "document_id": f.document_id, "created_at": f.created_at}
                                for f in page]})
                self._count_page(len(page), result)
                for action in result["detach"]:
                    self._act("detach", action, lambda a: self.files.detach(a["vector_store_id"], a["file_id"]))
                for action in result["delete"]:
                    self._act("remove", action, self._remove)
                page_after = page[-1].file_id

    def _files_phase(self, cursor: dict[str, Any]) -> None:
        after = cursor.get("after") if cursor.get("phase") == "files" else None
        for page in self.files.file_pages(page_size=FILE_PAGE_SIZE, after=after):
            self._check_time({"phase": "files", "after": after})
            result = self._call("registry_apply_file_page", {
                "p_run_id": self.run_id, "p_grace_seconds": self.settings.grace_seconds, "p_lease_seconds": self.lease,
                "p_files": [{"file_id": f.file_id, "document_id": f.document_id, "created_at": f.created_at}
                            for f in page]})
            self._count_page(len(page), result)
            for action in result["delete"]:
                self._act("remove", action, self._remove)
            for action in result["attach"]:
                self._act("attach", action, self._attach)
            after = page[-1].file_id

    def _count_page(self, size: int, result: dict[str, Any]) -> None:
        self.figures.pages += 1
        self.figures.files_seen += size
        self.figures.updated += result.get("updated", 0)
        self.figures.adopted += result.get("adopted", 0)
        self.figures.unknown += result.get("unknown", 0)

    def _act(self, what: str, action: dict[str, Any], do: Callable[[dict[str, Any]], object]) -> None:
        try:
            do(action)
        except AppError as exc:
            self.figures.error(f"{what} {action.get('file_id')}", exc)
            return
        log_event(log, "registry_action", action=what, **{k: v for k, v in action.items() if isinstance(v, str)})
        if what == "remove":
            self.figures.removed += 1
        elif what == "detach":
            self.figures.detached += 1

    def _remove(self, action: dict[str, Any]) -> None:
        if action.get("vector_store_id"):
            self.files.detach(action["vector_store_id"], action["file_id"])
        self.files.delete_file(action["file_id"])

    def _attach(self, action: dict[str, Any]) -> None:
        if action.get("grantee_id"):  # an accepted share: into the grantee's store; the owner's row is unchanged
            store = ensure_vector_store(self.db, self.files, action["grantee_id"], action.get("vector_store_id"))
            self.files.attach(store, action["file_id"], document_id=action["document_id"], owner_id=action["owner_id"])
            self.figures.shares_placed += 1
            return
        store = ensure_vector_store(self.db, self.files, action["owner_id"], action.get("vector_store_id"))
        attached = self.files.attach(store, action["file_id"], document_id=action["document_id"],
                                     owner_id=action["owner_id"])
        self.attached.append({"document_id": action["document_id"], "file_id": attached.file_id,
                              "vector_store_id": store, "status": attached.status})

    def _finish_pending_deletes(self) -> None:
        # A delete younger than this may still be running in its request.
        older = min(self.settings.grace_seconds, 120)
        pending = self._call("registry_pending_deletes", {"p_older_seconds": older, "p_limit": 100})
        done: list[str] = []
        for item in pending:
            try:
                if item["openai_file_id"]:
                    for store in item["vector_store_ids"]:
                        self.files.detach(store, item["openai_file_id"])
                    self.files.delete_file(item["openai_file_id"])
            except AppError as exc:
                self.figures.error(f"finish delete {item['document_id']}", exc)
                continue
            done.append(item["document_id"])
        if done:
            self.figures.deletes_finished = self._call("registry_mark_deleted", {"p_document_ids": done})

    def _finish(self, status: str, *, cursor: dict[str, Any] | None = None, cycle_complete: bool = False,
                error: str | None = None) -> dict[str, Any]:
        self.figures.duration_ms = int((self.clock() - self.started) * 1000)
        run = self._call("registry_finish_run", {
            "p_run_id": self.run_id, "p_status": status, "p_figures": self.figures.recorded(),
            "p_cursor": cursor, "p_cycle_complete": cycle_complete, "p_error": error, "p_attached": self.attached,
            "p_grace_seconds": self.settings.grace_seconds})
        figures = run["figures"]
        self.figures.missing = figures.get("missing", 0)
        self.figures.interrupted = figures.get("interrupted", 0)
        log_event(log, "registry_run", level=logging.ERROR if status == "failed" else logging.INFO,
                  run_id=run["id"], status=status, **{k: v for k, v in figures.items() if k != "error_samples"})
        return run
