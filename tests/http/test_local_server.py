"""The one-port local server: every function under /<function>, built by functions-framework."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from local.server import discover_functions, make_local_app, serve_in_thread
from tests.http.conftest import SERVICE_TOKEN
from tests.support.jwt_keys import KeyPair, mint, supabase_claims


@pytest.fixture
def ready_flag() -> list[bool]:
    return [False]


@pytest.fixture
def local_app(write_function: Callable[..., Path], use_env: Callable[..., None], ready_flag: list[bool]) -> Any:
    use_env()
    write_function("demo")
    main = write_function("registry_refresh", "REFRESH_ROUTES")
    functions = discover_functions(main.parents[2])
    assert sorted(functions) == ["demo", "registry_refresh"]
    return make_local_app(functions, ready=lambda: ready_flag[0])


def test_healthz_reports_readiness(local_app: Any, ready_flag: list[bool]) -> None:
    client = Client(local_app)
    starting = client.get("/healthz")
    assert starting.status_code == 503
    assert starting.get_json() == {"status": "starting"}
    ready_flag[0] = True
    ok = client.get("/healthz")
    assert ok.status_code == 200
    assert ok.get_json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/demo", "/demo/"])
def test_post_to_a_functions_root_is_served_without_redirect(local_app: Any, es_key: KeyPair, path: str) -> None:
    auth = {"Authorization": f"Bearer {mint(es_key, supabase_claims())}"}
    response = Client(local_app).post(path, json={"name": "pen", "price": "3.10"}, headers=auth)
    assert response.status_code == 201
    assert response.get_json()["price"] == "3.10"


def test_functions_route_relative_to_their_mount(local_app: Any, es_key: KeyPair) -> None:
    client = Client(local_app)
    auth = {"Authorization": f"Bearer {mint(es_key, supabase_claims())}"}
    assert client.get("/demo/me", headers=auth).status_code == 200
    refresh = client.post("/registry-refresh", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
    assert refresh.status_code == 200
    assert refresh.get_json() == {"role": "service_role", "checked": 3}
    assert client.post("/registry-refresh", headers=auth).status_code == 403
    missing = client.get("/nothing")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert missing.get_json()["code"] == "not_found"


@pytest.fixture
def running(local_app: Any, ready_flag: list[bool]) -> Iterator[str]:
    ready_flag[0] = True
    server = serve_in_thread(local_app)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()


def test_one_port_over_loopback(running: str, es_key: KeyPair) -> None:
    with urllib.request.urlopen(f"{running}/healthz", timeout=10) as response:
        assert json.load(response) == {"status": "ok"}
    request = urllib.request.Request(
        f"{running}/demo", data=json.dumps({"name": "pen", "price": "1"}).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {mint(es_key, supabase_claims())}",
                 "X-Request-Id": "req-loopback-1"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        assert response.headers["X-Request-Id"] == "req-loopback-1"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{running}/demo/me", timeout=10)
    assert refused.value.code == 401
    refused.value.close()
