"""The battery's figures of this run (cases, refusals, faults, violations), printed at the end of the
test session and written as JSON to ``BATTERY_FIGURES`` when that variable names a file."""

from __future__ import annotations

from typing import Any

FIGURES: dict[str, Any] = {}


def record(section: str, **figures: Any) -> None:
    """Add ``figures`` under ``section`` (a later value for the same name replaces the earlier)."""
    FIGURES.setdefault(section, {}).update(figures)
