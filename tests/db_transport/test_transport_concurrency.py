"""The production client path under the functions' concurrency: 8 request threads sharing one
SupabaseDatabase, against a TLS server that offers HTTP/2 as Supabase's edge does.

A sync ``httpx.Client(http2=True)`` shared by threads loses calls there (encode/httpx#3072); the
transport speaks HTTP/1.1 with a connection pool instead, and must lose none and mix up none.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from common.db.base import Identity
from common.db.supabase_transport import SupabaseDatabase
from tests.db_transport.conftest import PROJECT_KEYS
from tests.support.postgrest_emulator import PostgrestEmulator, start_postgrest_emulator
from tests.support.users import TEST_JWT_SECRET, TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY

THREADS = 8
CALLS_PER_THREAD = 500


@pytest.fixture(scope="module")
def tls_emulator(transport_functions: str) -> Iterator[PostgrestEmulator]:
    server = start_postgrest_emulator(transport_functions, TEST_JWT_SECRET, keys=PROJECT_KEYS, tls=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_database(tls_emulator: PostgrestEmulator) -> Iterator[SupabaseDatabase]:
    """The transport as production builds it; it trusts the test certificate through SSL_CERT_FILE."""
    db = SupabaseDatabase(tls_emulator.url, TEST_SECRET_KEY, publishable_key=TEST_PUBLISHABLE_KEY, timeout_seconds=10)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", tls_emulator.ca_file)
        db.client  # noqa: B018  # the HTTP client (and its SSL context) is built now, trusting the test CA
    yield db
    db.close()


def test_the_server_offers_http2(tls_emulator: PostgrestEmulator) -> None:
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=tls_emulator.ca_file)) as client:
        response = client.post(tls_emulator.url + "/rest/v1/rpc/t_void", json={},
                               headers={"apikey": TEST_SECRET_KEY})
    assert (response.status_code, response.http_version) == (204, "HTTP/2")


@pytest.mark.slow
def test_eight_threads_share_one_transport_without_losing_or_mixing_calls(
        tls_database: SupabaseDatabase, tls_emulator: PostgrestEmulator, make_user: Callable[..., Any]) -> None:
    # given one user per request thread
    users = [make_user() for _ in range(THREADS)]
    before = len(tls_emulator.requests)

    def work(user: Any) -> tuple[int, list[str]]:
        failures, seen = 0, []
        for _ in range(CALLS_PER_THREAD):
            try:
                seen.append(tls_database.call("t_whoami", {}, user.identity)["uid"])
            except Exception:  # noqa: BLE001 (counted: any failure at all is what this test looks for)
                failures += 1
        return failures, seen

    # when 8 threads make 500 calls each through the one shared transport
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(work, users))
    # then none failed, each call answered as its own caller, and every call went over the wire once
    assert [failures for failures, _ in results] == [0] * THREADS
    for user, (_, seen) in zip(users, results):
        assert set(seen) == {user.id} and len(seen) == CALLS_PER_THREAD
    assert len(tls_emulator.requests) - before == THREADS * CALLS_PER_THREAD
    # and the transport chose HTTP/1.1 on a server that offers HTTP/2
    assert set(tls_emulator.protocols[before:]) == {"HTTP/1.1"}


def test_service_and_user_calls_interleave_without_mixing_keys(
        tls_database: SupabaseDatabase, tls_emulator: PostgrestEmulator, make_user: Callable[..., Any]) -> None:
    user = make_user()
    identities = [user.identity, Identity.service()] * 40
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        roles = list(pool.map(lambda i: tls_database.call("t_whoami", {}, i)["current_user"], identities))
    assert roles == ["authenticated", "service_role"] * 40
