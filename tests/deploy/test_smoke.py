"""The post-deploy smoke checks, run against the bundles started locally (the deployed shape)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.bundle import function_names
from deploy.smoke import PROBES, check_function, check_scheduler, run


@pytest.mark.slow
def test_every_started_bundle_passes_the_function_check(started: dict[str, str]) -> None:
    # Given each bundle running on its own, when the smoke check calls it without a token
    checks = [check_function(name, url) for name, url in sorted(started.items())]
    # Then every one passes, saying what it answered
    assert [(c.name, c.ok) for c in checks] == [(name, True) for name in sorted(started)]
    assert all("answered 401" in c.detail for c in checks)


@pytest.mark.slow
def test_a_function_that_answers_otherwise_fails_the_check(started: dict[str, str]) -> None:
    # Given the refresh's URL checked as if it were a user-facing function: a GET there answers 405,
    # which is not the refusal of a token-less call the check wants
    user_facing = "usage"
    check = check_function(user_facing, started["registry_refresh"])
    # Then the check fails and names the status
    assert not check.ok
    assert "answered 405" in check.detail
    assert check_function(user_facing, started[user_facing]).ok


def test_every_function_has_a_probe() -> None:
    assert set(PROBES) == set(function_names())


def test_nothing_is_reachable_fails_without_a_traceback() -> None:
    check = check_function("upload", "http://127.0.0.1:9", timeout=2)
    assert not check.ok and "failed: ConnectionError" in check.detail


def test_outputs_of_an_unfinished_apply_are_refused() -> None:
    with pytest.raises(RuntimeError, match="has `terraform apply` finished"):
        run({"function_urls": {}})


def fake_gcloud(directory: Path, body: str) -> str:
    """A PATH whose `gcloud` is a script with ``body``, ahead of the system's commands."""
    script = directory / "gcloud"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return f"{directory}:/usr/bin:/bin"


@pytest.mark.parametrize(("described", "ok", "detail"), [
    ('{"state": "ENABLED", "lastAttemptTime": "2026-12-01T20:00:00Z", "status": {}}', True, "is ENABLED, last attempt 2026-12-01T20:00:00Z"),
    ('{"state": "PAUSED"}', False, "is PAUSED"),
    ('{"state": "ENABLED", "status": {"code": 7, "message": "PERMISSION_DENIED"}}', False, "last attempt failed: code 7 PERMISSION_DENIED"),
])
def test_the_scheduler_check_reads_the_jobs_state(described: str, ok: bool, detail: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Given gcloud describing the job (an external tool, stood in by a script on PATH)
    monkeypatch.setenv("PATH", fake_gcloud(tmp_path, f"echo '{described}'"))
    # When the job is checked, then its state and last attempt decide
    check = check_scheduler("registry-refresh", "europe-west1")
    assert (check.ok, detail in check.detail) == (ok, True)


def test_the_scheduler_check_reports_a_failing_describe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", fake_gcloud(tmp_path, "echo 'NOT_FOUND: job not found' >&2; exit 1"))
    check = check_scheduler("registry-refresh", "europe-west1")
    assert not check.ok and "NOT_FOUND" in check.detail
