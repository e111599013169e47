"""Injected faults as the real SDK experiences them: rate limits, retried 5xx, timeouts, dropped connections."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest

from local.openai_standin import StandinServer

ClientFactory = Callable[..., openai.OpenAI]

MODEL = "gpt-6-luna"


def test_rate_limit_surfaces_with_retry_after(client: openai.OpenAI, standin: StandinServer) -> None:
    # given the next response creation is rate limited
    standin.inject_fault(r"^/responses$", status=429, retry_after=7)
    # when a client without retries asks
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=MODEL, input="hello")
    # then the error carries OpenAI's code and the Retry-After header
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.response.headers["x-request-id"].startswith("req_")
    # and the fault was used up: the next call succeeds
    assert client.responses.create(model=MODEL, input="hello").status == "completed"


def test_server_error_then_success_is_retried_by_the_sdk(make_client: ClientFactory, standin: StandinServer) -> None:
    # given one 500 on listing files
    standin.inject_fault(r"^/files$", method="GET", status=500)
    retrying = make_client(max_retries=2)
    # when a retrying client lists files
    listed = retrying.files.list()
    # then it succeeded on the second attempt, which the SDK numbered
    assert listed.data is not None
    attempts = [r for r in standin.requests if r.method == "GET" and r.path == "/v1/files"]
    assert [r.headers.get("x-stainless-retry-count") for r in attempts] == ["0", "1"]


def test_server_errors_beyond_the_retries_raise(client: openai.OpenAI, standin: StandinServer) -> None:
    standin.inject_fault(r"^/vector_stores$", status=503, times=2)
    with pytest.raises(openai.InternalServerError) as caught:
        client.vector_stores.create(name="never")
    assert caught.value.status_code == 503
    with pytest.raises(openai.InternalServerError):
        client.vector_stores.create(name="never again")
    assert client.vector_stores.create(name="finally").name == "finally"


def test_delay_beyond_the_client_timeout_is_a_timeout(make_client: ClientFactory, standin: StandinServer) -> None:
    # given a server that answers after 2 s, and a client that waits 0.3 s
    standin.inject_fault(r"^/conversations$", method="POST", delay=2.0)
    impatient = make_client(timeout=0.3)
    # when the client calls
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        impatient.conversations.create()
    # then it gave up at its own timeout
    assert time.monotonic() - started < 1.5


def test_delay_within_the_timeout_just_slows_the_answer(client: openai.OpenAI, standin: StandinServer) -> None:
    standin.inject_fault(r"^/conversations$", delay=0.2)
    started = time.monotonic()
    assert client.conversations.create().object == "conversation"
    assert time.monotonic() - started >= 0.2


def test_dropped_connection_is_a_connection_error(client: openai.OpenAI, standin: StandinServer) -> None:
    standin.inject_fault(r"^/files$", drop=True)
    with pytest.raises(openai.APIConnectionError) as caught:
        client.files.list()
    assert not isinstance(caught.value, openai.APITimeoutError)


def test_a_dropped_connection_is_retried_by_the_sdk(make_client: ClientFactory, standin: StandinServer) -> None:
    standin.inject_fault(r"^/files$", drop=True)
    assert make_client(max_retries=1).files.list().data is not None
    assert len([r for r in standin.requests if r.path == "/v1/files"]) == 2


def test_dropped_stream_is_a_connection_error(client: openai.OpenAI, standin: StandinServer) -> None:
    standin.inject_fault(r"^/responses$", method="POST", drop=True)
    with pytest.raises(openai.APIConnectionError):
        stream = client.responses.create(model=MODEL, input="hello", stream=True)
        list(stream)


def test_faults_match_path_and_method_only(client: openai.OpenAI, standin: StandinServer) -> None:
    # given a fault on creating vector store files only
    store = client.vector_stores.create(name="faulty").id
    standin.inject_fault(r"/vector_stores/[^/]+/files$", method="POST", status=500)
    # then listing that path and other paths are untouched
    assert client.vector_stores.files.list(vector_store_id=store).data == []
    assert client.vector_stores.retrieve(store).id == store
    file_id = client.files.create(file=("f.txt", b"text"), purpose="assistants").id
    with pytest.raises(openai.InternalServerError):
        client.vector_stores.files.create(vector_store_id=store, file_id=file_id)
    # and a cleared fault no longer fires
    standin.inject_fault(r"^/files$", status=500, times=5)
    standin.clear_faults()
    assert client.files.list().data is not None


def test_requests_are_recorded_with_their_bodies_and_headers(client: openai.OpenAI, standin: StandinServer) -> None:
    client.vector_stores.create(name="recorded", metadata={"k": "v"})
    recorded = [r for r in standin.requests if r.path == "/v1/vector_stores"][-1]
    assert recorded.method == "POST"
    assert recorded.json == {"name": "recorded", "metadata": {"k": "v"}}
    assert recorded.headers["Authorization"] == "Bearer sk-local"
    assert recorded.headers["OpenAI-Beta"] == "assistants=v2"
    standin.clear_requests()
    assert standin.requests == []


@pytest.mark.parametrize("fault", [
    {"drop": True, "status": 500},
    {"status": 200},
    {"times": 0},
    {"delay": -1.0},
])
def test_contradictory_faults_are_refused(standin: StandinServer, fault: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        standin.inject_fault(r"^/files$", **fault)  # type: ignore[arg-type]


def test_processing_failure_codes_are_checked(standin: StandinServer) -> None:
    with pytest.raises(ValueError):
        standin.fail_processing(None, code="made_up")
