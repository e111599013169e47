"""Every function served from a child process, as ``./deploy.sh local`` serves them, so a test can
SIGKILL the process while a request is inside one of its steps.

The child is this module run with ``python -m``: it builds every ``functions/<name>/main.py`` with
functions-framework (:func:`local.server.make_local_app`), serves them on a free loopback port, and
prints the port. Its configuration is the process environment, as in production, made by
:func:`local.env.function_env` for the test's database and OpenAI stand-in, with the test project's
JWT secret and issuer and the scheduler's test token (tests/support/functions.py ``make_runtime``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.functions import REGISTRY_TOKEN, TEST_MAX_UPLOAD_BYTES
from tests.support.users import TEST_ISSUER, TEST_JWT_SECRET

REPO_ROOT = Path(__file__).resolve().parents[2]
# The project's settings (common/settings.py): none is inherited from the test process.
_SETTINGS_PREFIXES = ("SUPABASE_", "OPENAI_", "DATABASE_", "JWT_", "REGISTRY_", "CHAT_", "MAX_", "ALLOW_",
                      "ADMIN_", "HEALTH_", "SCHEDULER_", "PRICE_", "CORS_", "LOG_LEVEL", "GOOGLE_", "K_SERVICE")
START_SECONDS = 30.0


def child_env(database_url: str, openai_base_url: str, data_dir: Path) -> dict[str, str]:
    """The child's environment: the local stack's function environment on the test's database and
    stand-in, with the test's JWT settings, scheduler token and limits."""
    from local.env import function_env

    with pytest.MonkeyPatch.context() as patch:  # the local secrets it writes go to the test's folder
        patch.setenv("DATA_DIR", str(data_dir))
        functions = function_env(database_url=database_url, port=0, openai_base_url=openai_base_url)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}
    return {**inherited, **functions,
            "SUPABASE_JWT_SECRET": TEST_JWT_SECRET, "JWT_ISSUER": TEST_ISSUER,
            "REGISTRY_SERVICE_TOKEN": REGISTRY_TOKEN, "REGISTRY_GRACE_SECONDS": "0",
            "MAX_UPLOAD_BYTES": str(TEST_MAX_UPLOAD_BYTES), "OPENAI_MAX_RETRIES": "1",
            "OPENAI_TIMEOUT_SECONDS": "30", "PYTHONUNBUFFERED": "1"}


class FunctionsProcess:
    """A running child serving every function; :meth:`kill` SIGKILLs it (no cleanup runs)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        """Launch the process (it starts in the background: :meth:`ready` waits for it)."""
        self.log_path = log_path
        self._log = log_path.open("ab")
        self._process = subprocess.Popen([sys.executable, "-m", "tests.battery.child_process"], cwd=REPO_ROOT,
                                         env=env, stdout=subprocess.PIPE, stderr=self._log)
        self.base = ""

    def ready(self) -> FunctionsProcess:
        """Wait until the process serves (its port announced, ``/healthz`` answering 200); raises
        RuntimeError when it does not start."""
        if self.base:
            return self
        assert self._process.stdout is not None
        line = self._process.stdout.readline().decode()
        found = re.search(r"listening on (http://\S+)", line)
        if found is None:
            self.kill()
            raise RuntimeError(f"the functions' process did not start; see {self.log_path}")
        self.base = found.group(1)
        self._wait_ready()
        return self

    @property
    def pid(self) -> int:
        return self._process.pid

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        last: object = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{self.base}/healthz", timeout=2)
            except httpx.TransportError as exc:  # not listening yet: asked again until the deadline
                last = exc
            else:
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code}"
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the functions' process did not answer /healthz ({last!r}); see {self.log_path}")

    def client(self, token: str | None = None, *, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=timeout)

    def alive(self) -> bool:
        return self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process (as an instance is lost) and reap it."""
        if self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()


def main() -> None:
    import threading

    from local.server import discover_functions, make_local_app, make_local_server

    ready = threading.Event()
    server = make_local_server(make_local_app(discover_functions(REPO_ROOT), ready.is_set), "127.0.0.1", 0)
    print(f"listening on http://127.0.0.1:{server.port}", flush=True)
    ready.set()
    server.serve_forever()


if __name__ == "__main__":
    main()
