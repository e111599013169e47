"""The admin health check: each dependency checked, with status, latency and detail.

Checks, in order: ``database`` (reachable, every shipped migration applied with the same content),
``registry`` (the last registry refresh finished, not failed, and newer than twice its schedule),
``pending_turns`` (no turn pending longer than ``HEALTH_PENDING_TURN_SECONDS``), ``openai`` (one cheap
authenticated call with the configured key and base URL) and ``scheduler`` (the Cloud Scheduler job
through ``google-cloud-scheduler``: enabled, and its last attempt did not fail; ``not_applicable``
off Google Cloud). A check is ``ok``, ``failed`` or ``not_applicable``; any ``failed`` makes the
answer 503. The OpenAI SDK and the Cloud Scheduler client are imported on first use only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from common.db.base import Database, Identity
from common.errors import ConfigurationError, DatabaseUnavailableError

if TYPE_CHECKING:
    from common.runtime import Runtime
    from common.settings import AdminSettings

Status = Literal["ok", "failed", "not_applicable"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    latency_ms: float | None
    detail: str
    data: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "latency_ms": self.latency_ms, "detail": self.detail,
                "data": self.data or {}}


def shipped_migrations() -> list[dict[str, str]]:
    """The ``sql/*.sql`` files this build ships, with their SHA-256 as the migrator records it."""
    from common.db.migrate import SQL_DIR, migration_files

    return [{"filename": str(path.relative_to(SQL_DIR)),
             "sha256": hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest()}
            for path in migration_files(local=False)]


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def database_checks(db: Database, identity: Identity, settings: AdminSettings) -> list[Check]:
    """``database``, ``registry`` and ``pending_turns`` from one admin SQL call. A database that
    cannot be reached fails ``database`` (its data says ``unreachable``) and the two that need it;
    ForbiddenError (not an admin) and UnauthorizedError propagate."""
    files = shipped_migrations()
    started = time.perf_counter()
    try:
        report = db.call("admin_health_report", {"p_migrations": files,
                                                 "p_pending_seconds": settings.pending_turn_seconds}, identity)
    except DatabaseUnavailableError as exc:
        latency = _elapsed(started)
        return [Check("database", "failed", latency, f"unreachable ({exc.code})", {"unreachable": True}),
                Check("registry", "failed", None, "unknown: the database is unreachable"),
                Check("pending_turns", "failed", None, "unknown: the database is unreachable")]
    latency = _elapsed(started)
    pending = report["migrations_pending"]
    if not files:
        database = Check("database", "failed", latency, "no migration files are shipped with this build")
    elif pending:
        database = Check("database", "failed", latency, "migrations not applied: " + ", ".join(pending),
                         {"migrations_pending": pending})
    else:
        database = Check("database", "ok", latency, f"reachable; {len(files)} migrations current")
    return [database, _registry_check(report, settings), _pending_check(report, settings)]


def _registry_check(report: dict[str, Any], settings: AdminSettings) -> Check:
    run = report["last_registry_run"]
    stale_after = dt.timedelta(minutes=2 * settings.registry_schedule_minutes)
    if run is None:
        return Check("registry", "failed", None, "no registry refresh has run")
    now = dt.datetime.fromisoformat(report["now"])
    started = dt.datetime.fromisoformat(run["started_at"])
    data = {"id": run["id"], "status": run["status"], "started_at": run["started_at"],
            "finished_at": run["finished_at"], "figures": run["figures"]}
    if run["status"] == "failed":
        return Check("registry", "failed", None, f"the last refresh failed: {run['error'] or 'no error recorded'}",
                     data)
    if now - started > stale_after:
        return Check("registry", "failed", None, f"stale: the last refresh started at {run['started_at']}, "
                     f"more than {int(stale_after.total_seconds() // 60)} minutes ago", data)
    return Check("registry", "ok", None, f"last refresh {run['status']} at {run['started_at']}", data)


def _pending_check(report: dict[str, Any], settings: AdminSettings) -> Check:
    count = int(report["stale_pending_turns"])
    data = {"count": count, "oldest_created_at": report["oldest_pending_turn_at"]}
    if count:
        return Check("pending_turns", "failed", None,
                     f"{count} turn(s) pending for more than {settings.pending_turn_seconds} s", data)
    return Check("pending_turns", "ok", None, f"no turn pending for more than {settings.pending_turn_seconds} s",
                 data)


def openai_check(runtime: Runtime) -> Check:
    """One ``files.list(limit=1)`` with the configured key and base URL, no retries, a short timeout."""
    started = time.perf_counter()
    try:
        client = runtime.openai.client
    except ConfigurationError as exc:
        return Check("openai", "failed", None, exc.detail)
    import openai

    try:
        client.with_options(max_retries=0, timeout=10.0).files.list(limit=1)
    except openai.APIStatusError as exc:
        return Check("openai", "failed", _elapsed(started), f"HTTP {exc.status_code} from OpenAI")
    except openai.APIError as exc:
        return Check("openai", "failed", _elapsed(started), f"unreachable ({type(exc).__name__})")
    return Check("openai", "ok", _elapsed(started), "reachable with the configured key")


def scheduler_check(settings: AdminSettings, client_factory: Callable[[], Any]) -> Check:
    """The registry refresh job's state and last attempt; ``not_applicable`` off Google Cloud when
    no job is configured, ``failed`` on Google Cloud without ``SCHEDULER_JOB_NAME``."""
    if settings.scheduler_job is None:
        if settings.on_google_cloud:
            return Check("scheduler", "failed", None, "SCHEDULER_JOB_NAME is not set")
        return Check("scheduler", "not_applicable", None, "not running on Google Cloud")
    return check_scheduler_job(client_factory(), settings.scheduler_job)


def check_scheduler_job(client: Any, job_name: str) -> Check:
    """``get_job`` through a ``google.cloud.scheduler_v1.CloudSchedulerClient``: ok when the job is
    enabled and its last attempt (if any) succeeded."""
    from google.api_core import exceptions as google_errors
    from google.cloud import scheduler_v1

    started = time.perf_counter()
    try:
        job = client.get_job(name=job_name, timeout=10.0)
    except google_errors.GoogleAPICallError as exc:
        return Check("scheduler", "failed", _elapsed(started), f"Cloud Scheduler answered {exc.code}: {exc.message}")
    except google_errors.RetryError as exc:
        return Check("scheduler", "failed", _elapsed(started), f"Cloud Scheduler unreachable ({exc.message})")
    latency = _elapsed(started)
    state = scheduler_v1.Job.State(job.state).name
    last_attempt = job.last_attempt_time.isoformat() if job.last_attempt_time else None
    data = {"state": state, "schedule": job.schedule, "last_attempt_at": last_attempt,
            "last_attempt_code": job.status.code}
    if state != "ENABLED":
        return Check("scheduler", "failed", latency, f"the job is {state}", data)
    if job.status.code != 0:
        return Check("scheduler", "failed", latency,
                     f"the last attempt failed (code {job.status.code}: {job.status.message})", data)
    return Check("scheduler", "ok", latency, f"enabled; last attempt {last_attempt or 'not yet'}", data)


_scheduler_lock = threading.Lock()
_scheduler_clients: list[Any] = []


def default_scheduler_client() -> Any:
    """The process's Cloud Scheduler client (application default credentials), built on first use."""
    if not _scheduler_clients:
        with _scheduler_lock:
            if not _scheduler_clients:
                from google.cloud import scheduler_v1

                _scheduler_clients.append(scheduler_v1.CloudSchedulerClient())
    return _scheduler_clients[0]


def run_health(runtime: Runtime, identity: Identity,
               scheduler_client: Callable[[], Any] = default_scheduler_client) -> tuple[dict[str, Any], int]:
    """Every check; (body, 200) when none failed, else (body, 503) with the failing checks named.
    When the database is unreachable the caller's role cannot be confirmed, so the OpenAI and
    scheduler checks are not run and the answer holds only what the database failure says."""
    settings = runtime.settings.admin
    checks = database_checks(runtime.database, identity, settings)
    if not any(check.name == "database" and check.data and check.data.get("unreachable") for check in checks):
        # Only a caller the database confirmed as an admin learns about the other dependencies.
        checks.append(openai_check(runtime))
        checks.append(scheduler_check(settings, scheduler_client))
    failing = [check.name for check in checks if check.status == "failed"]
    body = {"status": "failed" if failing else "ok", "failing": failing,
            "checks": [check.as_json() for check in checks]}
    return body, 503 if failing else 200
