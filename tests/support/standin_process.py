"""The OpenAI stand-in in a child process, driven over its HTTP controls: for tests that measure
this process alone (memory) or want the server off this process's interpreter lock (speed)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


class StandinProcess:
    def __init__(self) -> None:
        self._process = subprocess.Popen([sys.executable, "-m", "local.openai_standin", "--port", "0"],
                                         cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
        assert self._process.stderr is not None
        base_url = None
        for line in self._process.stderr:
            found = re.search(r"listening on (http://\S+/v1)", line)
            if found:
                base_url = found.group(1)
                break
        if base_url is None:
            self.stop()
            raise RuntimeError("the stand-in did not report its address")
        self.base_url = base_url
        # Keep reading what it writes: an unread pipe fills (64 KiB) and then blocks the writer, and
        # with it every request thread waiting on the logging lock. The tail is kept for errors.
        self.stderr_tail: deque[str] = deque(maxlen=200)
        self._drainer = threading.Thread(target=self._drain, name="standin-stderr", daemon=True)
        self._drainer.start()
        self._control = httpx.Client(base_url=base_url.removesuffix("/v1") + "/_standin", timeout=30)

    def _drain(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self.stderr_tail.append(line)

    @property
    def requests(self) -> list[Any]:
        data = self._control.get("/requests").raise_for_status().json()["data"]
        return [SimpleNamespace(**r) for r in data]

    def clear_requests(self) -> None:
        self._control.delete("/requests").raise_for_status()

    def clear_faults(self) -> None:
        self._control.delete("/faults").raise_for_status()

    def stop(self) -> None:
        if hasattr(self, "_control"):
            self._control.close()
        self._process.terminate()
        self._process.wait(timeout=10)
        if hasattr(self, "_drainer"):
            self._drainer.join(timeout=10)  # the pipe's end reached: the reader stops on its own
        if self._process.stderr is not None:
            self._process.stderr.close()
