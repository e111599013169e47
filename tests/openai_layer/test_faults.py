"""OpenAI failures surface as the project's errors, with bounded retries and bounded time."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pytest

from common.errors import (
    InvalidInputError,
    OpenAIQuotaExhaustedError,
    RateLimitedError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamUnavailableError,
)
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


def test_insufficient_quota_needs_an_operator_not_a_retry(make_gateway: GatewayFactory, standin: Any,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    # given OpenAI answers 429 insufficient_quota (billing used up)
    gw = make_gateway(max_retries=0)
    standin.inject_fault(r"^/responses$", status=429, code="insufficient_quota")
    # when a turn is asked
    with caplog.at_level(logging.ERROR, logger="common.openai.errors"), \
            pytest.raises(OpenAIQuotaExhaustedError) as raised:
        gw.chat.answer(_turn())
    # then it is 503 openai_quota_exhausted, not a passing rate limit, with the line the alerting matches
    assert raised.value.status == 503 and raised.value.code == "openai_quota_exhausted"
    assert not isinstance(raised.value, RateLimitedError)
    events = [r for r in caplog.records if getattr(r, "json_fields", {}).get("event") == "openai_quota_exhausted"]
    assert len(events) == 1 and events[0].levelno == logging.ERROR


def test_a_passing_rate_limit_stays_a_429_with_retry_after(make_gateway: GatewayFactory, standin: Any) -> None:
    gw = make_gateway(max_retries=0)
    standin.inject_fault(r"^/responses$", status=429, code="rate_limit_exceeded", retry_after=3)
    with pytest.raises(RateLimitedError) as raised:
        gw.chat.answer(_turn())
    assert raised.value.status == 429 and raised.value.headers() == {"Retry-After": "3"}


def test_a_stream_cut_after_created_is_settled_by_retrieve(make_gateway: GatewayFactory, standin: Any) -> None:
    # given the connection drops right after response.created
    gw = make_gateway(max_retries=0)
    standin.inject_fault(r"^/responses$", cut_after_created=True)
    recorded: list[str] = []
    # when a turn is streamed
    with pytest.raises(UpstreamError) as raised:
        list(gw.chat.stream(_turn(), on_created=recorded.append))
    # then the response id was handed over before the cut, and the error carries it
    assert len(recorded) == 1 and recorded[0].startswith("resp_")
    assert raised.value.extra["openai_response_id"] == recorded[0]
    # and responses.retrieve settles the turn with its usage
    settled = gw.chat.retrieve_result(recorded[0])
    assert settled.settled and settled.status == "completed" and settled.response_id == recorded[0]
    assert settled.usage.output_tokens > 0 and settled.text


def test_on_created_failing_closes_the_stream_and_propagates(make_gateway: GatewayFactory) -> None:
    gw = make_gateway()

    class RecordFailedError(Exception):
        pass

    def refuse(response_id: str) -> None:
        raise RecordFailedError(response_id)

    events: list[Any] = []
    with pytest.raises(RecordFailedError):
        events.extend(gw.chat.stream(_turn(), on_created=refuse))
    assert events == []  # nothing was yielded before the id was recorded


def test_a_timed_out_store_create_finds_its_store_instead_of_making_another(make_gateway: GatewayFactory,
                                                                          standin: Any) -> None:
    # given the first create answers too late, and the lookup after it runs once the store exists
    gw = make_gateway(timeout_seconds=1.0, max_retries=2)
    standin.clear_requests()
    standin.inject_fault(r"^/vector_stores$", method="POST", delay=1.2)
    standin.inject_fault(r"^/vector_stores$", method="GET", delay=0.6)
    user = str(uuid.uuid4())
    # when the store is created
    store = gw.files.create_store(user)
    # then exactly one create reached OpenAI, and the store it made is the one returned
    creates = [r for r in standin.requests if r.method == "POST" and r.path == "/v1/vector_stores"]
    assert len(creates) == 1
    mine = [s for page in gw.files.store_pages() for s in page if s.user_id == user]
    assert [s.vector_store_id for s in mine] == [store] and mine[0].attempt == creates[0].json["metadata"]["attempt"]


def test_conversation_creation_is_never_retried(make_gateway: GatewayFactory, standin: Any) -> None:
    # given a conversation create that times out
    gw = make_gateway(timeout_seconds=1.0, max_retries=2)
    standin.clear_requests()
    standin.inject_fault(r"^/conversations$", method="POST", delay=1.5)
    # when a session's conversation is created, then the failure is visible and nothing was re-sent
    with pytest.raises(UpstreamUnavailableError):
        gw.chat.create_conversation(session_id="s-1")
    assert len([r for r in standin.requests if r.method == "POST" and r.path == "/v1/conversations"]) == 1


def test_settling_an_unknown_response_is_told_apart(make_gateway: GatewayFactory) -> None:
    with pytest.raises(UpstreamNotFoundError):
        make_gateway().chat.retrieve_result("resp_unknown")
