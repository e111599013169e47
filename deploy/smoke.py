"""Smoke test of a deployment: every function answers, refuses a token-less call, and the job is on.

``python -m deploy.smoke`` reads ``terraform output -json`` in ``terraform/`` and checks:

* each user-facing function answers a token-less call of one of its routes (:data:`PROBES`) with 401
  and a problem+json body: its code booted with valid settings (a configuration error answers 5xx)
  and it verifies tokens;
* ``registry_refresh`` refuses a token-less ``POST /`` with 401 or 403 (Cloud Run's IAM, or the
  function's own scheduler check);
* the Cloud Scheduler job is ``ENABLED`` and its last attempt, if any, did not fail.

Prints one line per check (``ok``/``FAIL``); exit status 1 when any failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PRIVATE = "registry_refresh"

# The route each function's token-less probe calls: one that exists, so that only authentication can
# refuse it (an unknown path answers 404 and a wrong method 405 before any token is looked at).
PROBES: dict[str, tuple[str, str]] = {
    "upload": ("GET", "/"),
    "chat": ("POST", "/"),
    "sessions": ("GET", "/"),
    "usage": ("GET", "/"),
    "admin": ("GET", "/health"),
    "registry_refresh": ("POST", "/"),
}


@dataclass(frozen=True)
class Check:
    """One smoke check's outcome."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def check_function(name: str, url: str, timeout: float = 30) -> Check:
    """A token-less call to one function: 401 problem+json (user-facing) or 401/403 (the refresh)."""
    method, path = PROBES[name]
    expected = {401, 403} if name == PRIVATE else {401}
    try:
        answer = requests.request(method, url.rstrip("/") + path, timeout=timeout)
    except requests.RequestException as exc:
        return Check(name, False, f"{method} {url.rstrip('/')}{path} failed: {type(exc).__name__}")
    if answer.status_code not in expected:
        return Check(name, False, f"{method} {path} without a token answered {answer.status_code}, expected {sorted(expected)}")
    if name != PRIVATE and not answer.headers.get("Content-Type", "").startswith("application/problem+json"):
        return Check(name, False, "401 without a problem+json body: not the function's own answer")
    return Check(name, True, f"{method} {path} without a token answered {answer.status_code}")


def check_scheduler(job: str, location: str) -> Check:
    """``gcloud scheduler jobs describe``: the job is ENABLED and its last attempt did not fail."""
    done = subprocess.run(["gcloud", "scheduler", "jobs", "describe", job, "--location", location, "--format=json"],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        return Check("scheduler", False, f"gcloud scheduler jobs describe {job} failed: {done.stderr.strip()[-300:]}")
    described = json.loads(done.stdout)
    state, status = described.get("state"), described.get("status", {})
    if state != "ENABLED":
        return Check("scheduler", False, f"job {job} is {state}")
    if status.get("code"):
        return Check("scheduler", False, f"job {job}'s last attempt failed: code {status['code']} {status.get('message', '')}")
    return Check("scheduler", True, f"job {job} is ENABLED, last attempt {described.get('lastAttemptTime', 'not yet made')}")


def terraform_outputs() -> dict[str, object]:
    """``terraform output -json`` of terraform/, as plain values; raises RuntimeError when it fails."""
    done = subprocess.run(["terraform", f"-chdir={ROOT / 'terraform'}", "output", "-json"],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"terraform output failed: {done.stderr.strip()[-500:]}")
    return {name: entry["value"] for name, entry in json.loads(done.stdout).items()}


def run(outputs: dict[str, object]) -> list[Check]:
    """Every check against the deployment described by ``outputs``; raises RuntimeError when the
    outputs lack the function URLs or the job (an apply that did not finish)."""
    urls = outputs.get("function_urls")
    if not isinstance(urls, dict) or not urls or "scheduler_job_name" not in outputs:
        raise RuntimeError("terraform outputs have no function_urls or scheduler_job_name: has `terraform apply` finished?")
    checks = [check_function(name, url) for name, url in sorted(urls.items())]
    checks.append(check_scheduler(str(outputs["scheduler_job_name"]), str(outputs["scheduler_job_location"])))
    return checks


def main() -> int:
    """Run the smoke test; 0 when every check passed."""
    try:
        checks = run(terraform_outputs())
    except RuntimeError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return 1
    for check in checks:
        print(check.line())
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
