"""The usage flow: what a user spent, their budget, and budget alerts logged exactly once.

Figures come from one SQL call (``get_usage_report``), which also records the budget alerts (80 % and
95 % of the monthly budget) the user's UTC month has reached. The database decides which caller
records an alert first (a unique key per user, month and threshold), and only that caller logs it,
so two instances never both send the same alert.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from common.db.base import Database, Identity
from common.logging import log_event

log = logging.getLogger("docchat.usage")

BUDGET_ALERT_EVENT = "budget_alert"


def usage_report(db: Database, identity: Identity, start: dt.date | None, end: dt.date | None) -> dict[str, Any]:
    """The caller's usage from ``start`` to ``end`` (UTC days; default this UTC month) and budget.
    Logs the budget alerts this call recorded. Raises InvalidInputError for a bad range,
    UserDisabledError for a disabled account, DatabaseUnavailableError when the database is down."""
    args: dict[str, Any] = {}
    if start is not None:
        args["p_from"] = start
    if end is not None:
        args["p_to"] = end
    report: dict[str, Any] = db.call("get_usage_report", args, identity)
    log_budget_alerts(str(identity.user_id), report.pop("new_alerts"))
    return report


def record_budget_alerts(db: Database, user_id: str) -> list[dict[str, Any]]:
    """After a turn is billed: record (backend API) and log the alerts ``user_id``'s month reached
    that no other call recorded before; returns them. Raises what the database call raises."""
    alerts: list[dict[str, Any]] = db.call("record_budget_alerts", {}, Identity.backend(user_id))
    log_budget_alerts(user_id, alerts)
    return alerts


def log_budget_alerts(user_id: str, alerts: Iterable[dict[str, Any]]) -> None:
    """One WARNING line ``{"event": "budget_alert", ...}`` per newly recorded alert (what the
    log-based alert policy counts)."""
    for alert in alerts:
        log_event(log, BUDGET_ALERT_EVENT, level=logging.WARNING,
                  message=f"budget alert: {alert['threshold']} % of the monthly budget reached",
                  user_id=user_id, threshold=alert["threshold"], month=alert["month"],
                  spent_usd=str(alert["spent_usd"]), monthly_budget_usd=str(alert["monthly_budget_usd"]))
