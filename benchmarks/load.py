"""A local HTTP load client in its own process, so that its work does not share the server's
interpreter lock: ``python -m benchmarks.load SPEC_JSON`` prints the latencies as JSON.

The spec names the URL, method, headers, concurrency and request count, and the body: ``json``
(sent as is), or ``upload`` (a small multipart text file whose content differs per request, as
uploads of the same bytes are refused as duplicates). Every answer must have the expected status
within ``timeout_seconds``; the first that does not (another status, no answer in time, a dropped
connection) stops the run, and :func:`run_load` raises :class:`LoadError` saying which and why.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from benchmarks.timing import Latency, latency_of

ROOT_MODULE = "benchmarks.load"


class LoadError(RuntimeError):
    """A request of a load run got an unexpected status or no answer (or the client process failed)."""


@dataclass(frozen=True)
class LoadSpec:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    upload: bool = False
    concurrency: int = 1
    requests: int = 100
    expect: int = 200
    timeout_seconds: float = 60.0

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "method": self.method, "headers": dict(self.headers), "json_body": self.json_body,
                "upload": self.upload, "concurrency": self.concurrency, "requests": self.requests,
                "expect": self.expect, "timeout_seconds": self.timeout_seconds}


def _body(spec: LoadSpec, n: int) -> tuple[bytes | None, dict[str, str]]:
    if spec.upload:
        boundary = uuid.uuid4().hex
        content = f"bench note {n} {uuid.uuid4()}".encode()
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note{n}.txt\"\r\n"
                f"Content-Type: text/plain\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if spec.json_body is not None:
        return json.dumps(spec.json_body).encode(), {"Content-Type": "application/json"}
    return None, {}


def _worker(spec: LoadSpec, counter: list[int], lock: threading.Lock, samples: list[float],
            failures: list[str]) -> None:
    parts = urlsplit(spec.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=spec.timeout_seconds)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        while not failures:
            with lock:
                if counter[0] >= spec.requests:
                    return
                counter[0] += 1
                n = counter[0]
            body, headers = _body(spec, n)
            begun = time.perf_counter()
            try:
                conn.request(spec.method, path, body=body, headers={**spec.headers, **headers})
                response = conn.getresponse()
                payload = response.read()
            except TimeoutError:
                failures.append(f"got no answer within {spec.timeout_seconds:g} s (request {n} of {spec.requests})")
                return
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"got no answer: {type(exc).__name__}: {exc} (request {n} of {spec.requests})")
                return
            elapsed = time.perf_counter() - begun
            if response.status != spec.expect:
                failures.append(f"answered {response.status}: {payload[:300].decode(errors='replace')}")
                return
            samples.append(elapsed)
    finally:
        conn.close()


def run_here(spec: LoadSpec) -> dict[str, Any]:
    """Run the load in this process; returns the samples (seconds), the wall time and any failure."""
    counter, lock, samples, failures = [0], threading.Lock(), [], []  # type: ignore[var-annotated]
    threads = [threading.Thread(target=_worker, args=(spec, counter, lock, samples, failures))
               for _ in range(spec.concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"samples": samples, "wall_seconds": time.perf_counter() - started, "failure": failures[0] if failures else None}


def run_load(spec: LoadSpec) -> Latency:
    """Run ``spec`` from a separate client process; raises LoadError when a request got an unexpected
    status or no answer, or when no request was answered at all."""
    done = subprocess.run([sys.executable, "-m", ROOT_MODULE, json.dumps(spec.to_json())], capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise LoadError(f"the load client failed: {done.stderr.strip()[-500:]}")
    result = json.loads(done.stdout)
    if result["failure"]:
        raise LoadError(f"{spec.method} {spec.url} {result['failure']}")
    if not result["samples"]:
        raise LoadError(f"{spec.method} {spec.url}: none of {spec.requests} requests was answered "
                        f"({done.stderr.strip()[-300:] or 'the load client reported no failure'})")
    return latency_of(result["samples"], wall_seconds=result["wall_seconds"])


def main() -> int:
    raw = json.loads(sys.argv[1])
    print(json.dumps(run_here(LoadSpec(**raw))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
