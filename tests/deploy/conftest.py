"""Fixtures of the deployment tests: every function's bundle started on its own, as Cloud Run would."""

from __future__ import annotations

import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.bundle import function_names, write_bundle
from deploy.venvs import cached_venv

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def minimal_env(venv: Path) -> dict[str, str]:
    """What a function needs to boot, every address loopback and unreachable (port 9, discard)."""
    return {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "SUPABASE_URL": "http://127.0.0.1:9",
        "SUPABASE_SECRET_KEY": "sb_secret_bundle-start-test",
        "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_bundle-start-test",
        "OPENAI_API_KEY": "sk-bundle-start-test",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "SCHEDULER_AUDIENCE": "http://127.0.0.1:9/registry-refresh",
        "SCHEDULER_SERVICE_ACCOUNT": "scheduler@example.iam.gserviceaccount.com",
        "THREADS": "2",
    }


@pytest.fixture(scope="session")
def bundle_venv() -> Path:
    """A fresh virtualenv with only requirements.txt installed (cached under .cache/ by its hash)."""
    return cached_venv(ROOT / "requirements.txt")


@pytest.fixture(scope="session")
def started(bundle_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Every bundle unpacked into its own empty folder and started under functions-framework at once;
    yields name -> base URL and stops them all afterwards."""
    processes: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for name in function_names():
            folder = tmp_path_factory.mktemp(f"bundle-{name}")
            with zipfile.ZipFile(write_bundle(name, tmp_path_factory.mktemp("zip"))) as archive:
                archive.extractall(folder)
            port = free_port()
            process = subprocess.Popen(
                [str(bundle_venv / "bin" / "functions-framework"), "--target", name,
                 "--source", f"functions/{name}/main.py", "--host", "127.0.0.1", "--port", str(port)],
                cwd=folder, env=minimal_env(bundle_venv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            processes[name] = (process, f"http://127.0.0.1:{port}")
        for name, (process, url) in processes.items():
            wait_until_listening(process, url, name)
        yield {name: url for name, (_, url) in processes.items()}
    finally:
        for process, _ in processes.values():
            process.terminate()
        for process, _ in processes.values():
            process.wait(timeout=15)
            if process.stderr:
                process.stderr.close()


def wait_until_listening(process: subprocess.Popen[bytes], url: str, name: str, timeout: float = 30) -> None:
    """Return once ``url`` accepts connections; fail with the server's stderr if it exits or times out."""
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}: {process.stderr.read().decode()[-3000:]}")
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{name} did not listen within {timeout} s")


