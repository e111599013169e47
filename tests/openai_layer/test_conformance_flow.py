"""One full flow through the OpenAI layer (file, store, attach, conversation, answers collected and
streamed, with citations and reasoning, retrieval, listings, deletes), with every request the layer
sent and every answer the stand-in gave checked against OpenAI's OpenAPI document."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from common.openai import OpenAIGateway, build_gateway
from common.openai.responses import CitationFound, TextDelta, TurnRequest, TurnResult
from common.settings import OpenAISettings
from local.openai_standin.openapi import RequestSchemas
from tests.support.openapi import assert_matches_openapi

DOCUMENT = Path(__file__).resolve().parents[3] / "shared" / "reference" / "openai-openapi.json"
POLICY = ("Expense reports are due on the fifth working day of each month. Late reports are paid with "
          "the following month's salary.")


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes


class RecordingTransport(httpx2.BaseTransport):
    """A real HTTP transport that keeps a copy of every answer (streams are read whole first)."""

    def __init__(self) -> None:
        self._inner = httpx2.HTTPTransport()
        self.exchanges: list[Exchange] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        body = response.read()
        response.close()
        self.exchanges.append(Exchange(request.method, request.url.path, response.status_code,
                                       response.headers.get("content-type", ""), body))
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "transfer-encoding"]
        return httpx2.Response(response.status_code, headers=headers, content=body, request=request)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def recorded(standin: Any) -> Iterator[tuple[OpenAIGateway, RecordingTransport]]:
    transport = RecordingTransport()
    client = openai.OpenAI(api_key="sk-local", base_url=standin.base_url, max_retries=0,
                           http_client=httpx2.Client(transport=transport, timeout=10.0))
    settings = OpenAISettings(api_key="sk-local", base_url=standin.base_url, max_retries=0)
    yield build_gateway(settings, client=client), transport
    client.close()


def _template(document: dict[str, Any], method: str, path: str) -> str:
    """The document's path template for a concrete path after ``/v1``."""
    for template, methods in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if method.lower() in methods and re.match(pattern, path):
            return template
    raise AssertionError(f"{method} {path} is not an operation of OpenAI's API")


def _events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[len("data: "):]) for line in body.decode().splitlines() if line.startswith("data: ")]


def _as_documented(event: dict[str, Any]) -> dict[str, Any]:
    """Real in-progress snapshots carry ``usage: null``, which the document's Response does not allow."""
    if event["type"] in ("response.created", "response.in_progress"):
        assert event["response"]["usage"] is None
        return dict(event, response={k: v for k, v in event["response"].items() if k != "usage"})
    return event


def test_a_full_flow_is_true_to_the_openapi_document(recorded: Any, standin: Any, document: dict[str, Any]) -> None:
    gateway, transport = recorded
    standin.clear_requests()
    # given a user's document in their store
    user, doc_id = str(uuid.uuid4()), str(uuid.uuid4())
    store = gateway.files.create_store(user)
    file_id, _ = gateway.files.upload(doc_id, "expenses.txt", POLICY.encode(), "text/plain")
    gateway.files.attach(store, file_id, document_id=doc_id, owner_id=user)
    assert gateway.files.status(store, file_id).status == "completed"  # type: ignore[union-attr]
    conversation = gateway.chat.create_conversation(session_id=str(uuid.uuid4()))
    turn = TurnRequest(user_id=user, message="When are expense reports due?", session_id="s", message_id="m",
                       vector_store_id=store, document_ids=[doc_id], conversation_id=conversation)
    # when a turn is answered whole, another streamed, and the first retrieved again
    created: list[str] = []
    answered = gateway.chat.answer(turn, on_created=created.append)
    streamed = list(gateway.chat.stream(replace(turn, message="And late reports?")))
    settled = gateway.chat.retrieve_result(answered.response_id)
    listed = ([f for page in gateway.files.store_file_pages(store) for f in page],
              [f for page in gateway.files.file_pages() for f in page], [s for page in gateway.files.store_pages()
                                                                         for s in page])
    gateway.files.detach(store, file_id)
    gateway.files.delete_file(file_id)
    gateway.chat.delete_conversation(conversation)
    gateway.files.delete_store(store)
    # then the answers cite the document, with reasoning counted and the passages kept
    final = streamed[-1]
    assert isinstance(final, TurnResult) and any(isinstance(e, TextDelta) for e in streamed)
    assert [e.file_id for e in streamed if isinstance(e, CitationFound)] == [c.file_id for c in final.citations]
    assert created == [answered.response_id] and settled.text == answered.text
    for result in (answered, final):
        assert result.citations and result.citations[0].document_id == doc_id
        assert result.usage.reasoning_tokens > 0 and result.retrieved[0].document_id == doc_id
    assert listed[0] and listed[1] and listed[2]
    # and every request the layer sent is valid for its operation
    schemas = RequestSchemas(DOCUMENT)
    sent = [r for r in standin.requests if r.path.startswith("/v1/")]
    assert {(r.method, _template(document, r.method, r.path[3:])) for r in sent} >= {
        ("POST", "/files"), ("POST", "/vector_stores"), ("POST", "/vector_stores/{vector_store_id}/files"),
        ("POST", "/conversations"), ("POST", "/responses"), ("GET", "/responses/{response_id}")}
    for request in sent:
        if request.json is not None:
            schemas.check(request.method, request.path[3:], request.json)
    assert all(r.json["stream"] is True for r in sent if r.method == "POST" and r.path == "/v1/responses")
    # and every answer the stand-in gave matches what the document promises
    checked = 0
    for exchange in transport.exchanges:
        template = _template(document, exchange.method, exchange.path[3:])
        if exchange.content_type.startswith("text/event-stream"):
            for event in _events(exchange.body):
                assert_matches_openapi(document, exchange.method, template, exchange.status, _as_documented(event),
                                       content_type="text/event-stream")
                checked += 1
        elif exchange.content_type.startswith("application/json"):
            assert_matches_openapi(document, exchange.method, template, exchange.status, json.loads(exchange.body))
            checked += 1
    assert checked >= len(transport.exchanges)
