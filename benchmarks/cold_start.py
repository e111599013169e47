"""Cold start: a fresh functions-framework process per run that loads ``functions/<name>/main.py`` and
serves its first request (a token-less one: the answer a signed-out client gets, 401), timed from
the process start to the first answer; next to a bare "hello" function served the same way, and a
"hello" that also imports the clients the function needs. Plus the costliest imports of each
function (``python -X importtime``) and whether it imports a client it does not use."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.timing import median

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("admin", "chat", "registry_refresh", "sessions", "upload", "usage")
# The clients each function needs at its first real request: every one verifies a token (jwt) and
# calls the database (psycopg's pool); these also talk to OpenAI.
BASE_CLIENTS = ("jwt", "psycopg_pool")
OPENAI_USERS = frozenset({"chat", "upload", "registry_refresh"})
NEVER_IMPORTED = {"usage": ("openai",), "admin": ("openai",)}
STARTUP_TIMEOUT_SECONDS = 60.0

HELLO = '''\
{imports}

def hello(request):
    return "hello"
'''

# Enough configuration for a function to start; a token-less request never reaches the database.
ENV = {
    "DATABASE_URL": "postgresql://bench@127.0.0.1:9/bench",
    "SUPABASE_JWT_SECRET": "bench-secret-bench-secret-bench-secret-0123",
    "JWT_ISSUER": "http://127.0.0.1:9/auth/v1",
    "REGISTRY_SERVICE_TOKEN": "bench-registry-token",
    "OPENAI_API_KEY": "sk-bench",
    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    "CORS_ORIGINS": "http://127.0.0.1:3000",
}


class ColdStartError(RuntimeError):
    """A function process did not start or did not answer its first request."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_answer(url: str, process: subprocess.Popen[bytes], started: float) -> float:
    """Seconds from ``started`` until ``url`` answers anything (an HTTP error status counts)."""
    while time.perf_counter() - started < STARTUP_TIMEOUT_SECONDS:
        if process.poll() is not None:
            raise ColdStartError(f"the process exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                response.read()
            return time.perf_counter() - started
        except urllib.error.HTTPError as answered:
            answered.read()
            return time.perf_counter() - started
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.005)
    raise ColdStartError(f"no answer from {url} within {STARTUP_TIMEOUT_SECONDS:.0f} s")


def time_first_request(source: Path, target: str) -> float:
    """One cold start of ``target`` in ``source``: seconds from process start to its first answer."""
    port = _free_port()
    command = [str(Path(sys.executable).with_name("functions-framework")), "--target", target,
               "--source", str(source), "--port", str(port), "--host", "127.0.0.1"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        return _first_answer(f"http://127.0.0.1:{port}/", process, started)
    finally:
        process.terminate()
        process.wait(timeout=30)


def costliest_imports(main: Path, count: int = 5) -> tuple[list[dict[str, Any]], set[str]]:
    """The ``count`` packages whose modules cost ``main`` the most import time (self time summed per
    top-level package, ``python -X importtime``), and every module it imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           f"import runpy; runpy.run_path({str(main)!r}, run_name='main')"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=True)
    per_package: dict[str, int] = {}
    modules: set[str] = set()
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if not found:
            continue
        name = found.group(2)
        modules.add(name)
        package = name.split(".")[0]
        per_package[package] = per_package.get(package, 0) + int(found.group(1))
    ranked = sorted(per_package.items(), key=lambda item: item[1], reverse=True)[:count]
    return [{"package": package, "ms": round(us / 1000, 1)} for package, us in ranked], modules


def _env() -> dict[str, str]:
    """This process's environment with the functions' configuration."""
    import os

    return {**os.environ, **ENV}


def measure(functions: tuple[str, ...] = FUNCTIONS, runs: int = 7) -> dict[str, Any]:
    """Median cold start (first request included) of each function and of the hellos, interleaved
    run by run so that load on the machine falls on all of them alike."""
    with tempfile.TemporaryDirectory() as scratch:
        hellos = {"hello": (), "hello+db": BASE_CLIENTS, "hello+db+openai": (*BASE_CLIENTS, "openai")}
        sources: dict[str, tuple[Path, str]] = {}
        for label, imports in hellos.items():
            path = Path(scratch) / label / "main.py"
            path.parent.mkdir()
            path.write_text(HELLO.format(imports="\n".join(f"import {name}" for name in imports)))
            sources[label] = (path, "hello")
        for name in functions:
            sources[name] = (ROOT / "functions" / name / "main.py", name)
        samples: dict[str, list[float]] = {label: [] for label in sources}
        for _ in range(runs):
            for label, (path, target) in sources.items():
                samples[label].append(time_first_request(path, target))
    result: dict[str, Any] = {"runs": runs, "hello_ms": {}, "functions": {}}
    for label in hellos:
        result["hello_ms"][label] = round(median(samples[label]) * 1000, 1)
    openai_ms = result["hello_ms"]["hello+db+openai"] - result["hello_ms"]["hello+db"]
    for name in functions:
        # A token-less first request needs the token verifier and, for a real one, the database: the
        # OpenAI SDK is imported on first use, so its cost falls on the first request that calls OpenAI.
        floor_label = "hello+db"
        ms = median(samples[name]) * 1000
        imports, modules = costliest_imports(ROOT / "functions" / name / "main.py")
        unused = sorted(m for m in NEVER_IMPORTED.get(name, ()) if m in modules)
        standin = sorted(m for m in modules if m.startswith("local.openai_standin"))
        result["functions"][name] = {
            "ms": round(ms, 1), "floor": floor_label,
            "ratio_to_hello": round(ms / result["hello_ms"]["hello"], 2),
            "ratio_to_floor": round(ms / result["hello_ms"][floor_label], 2),
            "costliest_imports": imports, "unused_clients_imported": unused + standin[:1],
            "openai_imported_at_start": "openai" in modules,
            "first_openai_request_adds_ms": round(openai_ms, 1) if name in OPENAI_USERS and "openai" not in modules
            else 0.0,
        }
    return result
