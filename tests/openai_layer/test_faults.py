"""OpenAI failures surface as the project's errors, with bounded retries and bounded time."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from common.errors import InvalidInputError, RateLimitedError, UpstreamNotFoundError, UpstreamUnavailableError
from common.openai.responses import TurnRequest
from tests.openai_layer.conftest import GatewayFactory


def _turn() -> TurnRequest:
    return TurnRequest(user_id=str(uuid.uuid4()), message="hello", session_id="s", message_id="m",
                       vector_store_id=None, document_ids=[])


def test_rate_limit_carries_the_servers_retry_after(make_gateway: GatewayFactory, standin: Any) -> None:
    gw = make_gateway(max_retries=0)
    standin.inject_fault(r"^/responses$", status=429, retry_after=17)
    with pytest.raises(RateLimitedError) as raised:
        gw.chat.answer(_turn())
    assert raised.value.retry_after == 17 and raised.value.headers() == {"Retry-After": "17"}
    assert raised.value.extra["openai_request_id"].startswith("req_")


def test_a_failing_read_is_retried_then_reported_unavailable(make_gateway: GatewayFactory, standin: Any) -> None:
    gw = make_gateway(max_retries=2)
    store = gw.files.create_store(str(uuid.uuid4()))
    standin.clear_requests()
    standin.inject_fault(r"/vector_stores/[^/]+/files$", status=500, times=3)
    with pytest.raises(UpstreamUnavailableError):
        list(gw.files.store_file_pages(store))
    assert len([r for r in standin.requests if r.path.endswith("/files")]) == 3  # 1 + 2 retries
    standin.inject_fault(r"/vector_stores/[^/]+/files$", status=503, times=1)
    assert list(gw.files.store_file_pages(store)) == []  # one failure, then the retry succeeds


def test_chat_responses_are_never_blindly_resent(make_gateway: GatewayFactory, standin: Any) -> None:
    gw = make_gateway(max_retries=2)
    standin.clear_requests()
    standin.inject_fault(r"^/responses$", status=500, times=1)
    with pytest.raises(UpstreamUnavailableError):
        gw.chat.answer(_turn())
    assert len([r for r in standin.requests if r.path == "/v1/responses"]) == 1


def test_nothing_hangs_longer_than_the_configured_timeout(make_gateway: GatewayFactory, standin: Any) -> None:
    gw = make_gateway(timeout_seconds=1.0, max_retries=0)
    standin.inject_fault(r"^/responses$", delay=5.0)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailableError):
        gw.chat.answer(_turn())
    assert time.monotonic() - started < 2.5


def test_a_dropped_connection_is_unavailable(make_gateway: GatewayFactory, standin: Any) -> None:
    gw = make_gateway(max_retries=0)
    standin.inject_fault(r"^/files$", drop=True)
    with pytest.raises(UpstreamUnavailableError):
        gw.files.upload(str(uuid.uuid4()), "a.txt", b"hello", "text/plain")


def test_the_provider_refusing_input_is_a_client_error(make_gateway: GatewayFactory) -> None:
    gw = make_gateway(max_output_tokens=8)  # below the API's minimum of 16: a 400 from the provider
    with pytest.raises(InvalidInputError):
        gw.chat.answer(_turn())


def test_a_missing_object_is_told_apart_and_deletes_treat_it_as_done(make_gateway: GatewayFactory) -> None:
    gw = make_gateway()
    with pytest.raises(UpstreamNotFoundError):
        gw.files.attach("vs_missing", "file-missing", document_id="d", owner_id="u")
    assert gw.files.detach("vs_missing", "file-missing") is False
    assert gw.files.delete_file("file-missing") is False
