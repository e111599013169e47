"""``./deploy.sh local`` as a newcomer uses it: the stack starts on embedded defaults, a PDF uploaded
with the printed token becomes ready, more users get tokens, the refresh runs on demand, and Ctrl-C
stops everything."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import samples

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path_factory.mktemp("stack-data")), "PORT": str(port)}
    for name in ("DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "SUPABASE_URL"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    text = "".join(output)
    tokens = dict(re.findall(r"^(USER_TOKEN|ADMIN_TOKEN)=(\S+)$", text, re.MULTILINE))
    assert set(tokens) == {"USER_TOKEN", "ADMIN_TOKEN"}, text[-2000:]
    yield {"base": f"http://127.0.0.1:{port}", "data_dir": env["DATA_DIR"], "port": str(port), "output": text,
           **tokens, "pid": str(process.pid)}
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    process.stdout.close()


def _run(module: str, stack: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": stack["data_dir"], "PORT": stack["port"]}
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_stack_is_healthy_and_prints_what_to_do_next(stack: dict[str, str]) -> None:
    assert httpx.get(f"{stack['base']}/healthz").json() == {"status": "ok"}
    assert "curl" in stack["output"] and stack["base"] in stack["output"]


def test_a_pdf_uploaded_with_the_printed_token_becomes_ready(stack: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {stack['USER_TOKEN']}"}
    pdf = samples.pdf("The comet returns every seventy-six years.")
    created = httpx.post(f"{stack['base']}/upload", headers=headers, files={"file": ("comet.pdf", pdf)}, timeout=30)
    assert created.status_code == 201, created.text
    doc = created.json()
    deadline = time.monotonic() + 30
    status = doc["status"]
    while status != "ready" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = httpx.get(f"{stack['base']}/upload/{doc['id']}", headers=headers).json()["status"]
    assert status == "ready"


def test_more_users_get_tokens_and_are_isolated(stack: dict[str, str]) -> None:
    made = _run("local.token", stack, "second@example.com")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    listed = httpx.get(f"{stack['base']}/upload", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and listed.json()["items"] == []


def test_the_refresh_runs_on_demand(stack: dict[str, str]) -> None:
    ran = _run("local.refresh", stack)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert '"status": "completed"' in ran.stdout


def test_ctrl_c_stops_everything(stack: dict[str, str]) -> None:
    pid = int(stack["pid"])
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the stack did not stop on Ctrl-C")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack['base']}/healthz", timeout=2)
