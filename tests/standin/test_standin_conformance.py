"""Every payload the stand-in returns, checked twice: by the SDK's own pydantic types in strict mode, and
against OpenAI's published OpenAPI document (``../shared/reference/openai-openapi.json``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from openai.types import FileDeleted, FileObject, VectorStore, VectorStoreDeleted, VectorStoreSearchResponse
from openai.types.conversations import Conversation, ConversationDeletedResource, ConversationItemList
from openai.types.responses import Response, ResponseItemList, ResponseStreamEvent
from openai.types.vector_stores import FileContentResponse, VectorStoreFile, VectorStoreFileDeleted
from pydantic import BaseModel, TypeAdapter

from local.openai_standin import StandinServer

MODEL = "gpt-6-luna"
DOCUMENT = b"Expense reports are due on the fifth working day of each month."


def _strict(model: type[BaseModel]) -> Callable[[Any], None]:
    def check(payload: Any) -> None:
        model.model_validate(payload, strict=True)
    return check


def _strict_list(item: type[BaseModel]) -> Callable[[Any], None]:
    def check(payload: Any) -> None:
        assert payload["object"] == "list" and isinstance(payload["has_more"], bool)
        assert payload["first_id"] == payload["data"][0]["id"] and payload["last_id"] == payload["data"][-1]["id"]
        for entry in payload["data"]:
            item.model_validate(entry, strict=True)
    return check


def _strict_search_page(payload: Any) -> None:
    assert payload["object"] == "vector_store.search_results.page"
    for entry in payload["data"]:
        VectorStoreSearchResponse.model_validate(entry, strict=True)


def _strict_content_page(payload: Any) -> None:
    assert payload["object"] == "vector_store.file_content.page" and payload["data"]
    for entry in payload["data"]:
        FileContentResponse.model_validate(entry, strict=True)


def _strict_events(payload: Any) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for event in payload:
        adapter.validate_python(event, strict=True)


def _error_body(payload: Any) -> None:
    assert set(payload["error"]) == {"message", "type", "param", "code"}


# case name -> (strict SDK check, OpenAPI schema name); streams hold a list of events.
CASES: dict[str, tuple[Callable[[Any], None], str]] = {
    "file": (_strict(FileObject), "OpenAIFile"),
    "file_list": (_strict_list(FileObject), "ListFilesResponse"),
    "file_deleted": (_strict(FileDeleted), "DeleteFileResponse"),
    "vector_store": (_strict(VectorStore), "VectorStoreObject"),
    "vector_store_expiring": (_strict(VectorStore), "VectorStoreObject"),
    "vector_store_list": (_strict_list(VectorStore), "ListVectorStoresResponse"),
    "vector_store_deleted": (_strict(VectorStoreDeleted), "DeleteVectorStoreResponse"),
    "vs_file_in_progress": (_strict(VectorStoreFile), "VectorStoreFileObject"),
    "vs_file_completed": (_strict(VectorStoreFile), "VectorStoreFileObject"),
    "vs_file_failed": (_strict(VectorStoreFile), "VectorStoreFileObject"),
    "vs_file_list": (_strict_list(VectorStoreFile), "ListVectorStoreFilesResponse"),
    "vs_file_deleted": (_strict(VectorStoreFileDeleted), "DeleteVectorStoreFileResponse"),
    "vs_search": (_strict_search_page, "VectorStoreSearchResultsPage"),
    "vs_file_content": (_strict_content_page, "VectorStoreFileContentResponse"),
    "conversation": (_strict(Conversation), "ConversationResource"),
    "conversation_items": (_strict(ConversationItemList), "ConversationItemList"),
    "conversation_items_created": (_strict(ConversationItemList), "ConversationItemList"),
    "conversation_deleted": (_strict(ConversationDeletedResource), "DeletedConversationResource"),
    "response_cited": (_strict(Response), "Response"),
    "response_in_conversation": (_strict(Response), "Response"),
    "response_no_match": (_strict(Response), "Response"),
    "response_no_tools": (_strict(Response), "Response"),
    "response_incomplete": (_strict(Response), "Response"),
    "response_retrieved": (_strict(Response), "Response"),
    "response_input_items": (_strict(ResponseItemList), "ResponseItemList"),
    "stream_events": (_strict_events, "ResponseStreamEvent"),
    "stream_events_incomplete": (_strict_events, "ResponseStreamEvent"),
    "error": (_error_body, "ErrorResponse"),
}


@pytest.fixture(scope="module")
def payloads(standin: StandinServer) -> dict[str, Any]:
    """One raw JSON payload (as sent over the wire) for every case above."""
    with httpx2.Client(base_url=standin.base_url, headers={"Authorization": "Bearer sk-local"}) as http:
        def call(method: str, path: str, **options: Any) -> Any:
            answer = http.request(method, path, **options)
            assert answer.status_code < 500, answer.text
            return answer.json()

        def events(body: dict[str, Any]) -> list[Any]:
            with http.stream("POST", "/responses", json=dict(body, stream=True)) as answer:
                text = answer.read().decode("utf-8")
            return [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]

        found: dict[str, Any] = {}
        found["file"] = call("POST", "/files", files={"file": ("expenses.txt", DOCUMENT)},
                             data={"purpose": "assistants"})
        file_id = found["file"]["id"]
        bad_id = call("POST", "/files", files={"file": ("bad.bin", b"\x00\x01")}, data={"purpose": "assistants"})["id"]
        found["file_list"] = call("GET", "/files")
        store = call("POST", "/vector_stores", json={"name": "conformance", "metadata": {"suite": "conformance"}})
        found["vector_store"] = store
        found["vector_store_expiring"] = call("POST", "/vector_stores", json={
            "name": "expiring", "expires_after": {"anchor": "last_active_at", "days": 3}})
        found["vector_store_list"] = call("GET", "/vector_stores")
        found["vs_file_in_progress"] = call("POST", f"/vector_stores/{store['id']}/files", json={
            "file_id": file_id, "attributes": {"document_id": "d-1", "pages": 3, "shared": True}})
        found["vs_file_completed"] = call("GET", f"/vector_stores/{store['id']}/files/{file_id}")
        call("POST", f"/vector_stores/{store['id']}/files", json={"file_id": bad_id})
        found["vs_file_failed"] = call("GET", f"/vector_stores/{store['id']}/files/{bad_id}")
        found["vs_file_list"] = call("GET", f"/vector_stores/{store['id']}/files")
        found["vs_file_content"] = call("GET", f"/vector_stores/{store['id']}/files/{file_id}/content")
        found["vs_search"] = call("POST", f"/vector_stores/{store['id']}/search", json={"query": "expense reports due"})
        conversation = call("POST", "/conversations", json={"metadata": {"session": "s"}})
        found["conversation"] = conversation
        tools = [{"type": "file_search", "vector_store_ids": [store["id"]],
                  "filters": {"type": "eq", "key": "document_id", "value": "d-1"}, "max_num_results": 5}]
        question = "When are expense reports due?"
        found["response_cited"] = call("POST", "/responses", json={
            "model": MODEL, "input": question, "tools": tools, "include": ["file_search_call.results"],
            "instructions": "Answer from the documents.", "metadata": {"turn": "1"}, "safety_identifier": "hash"})
        found["response_in_conversation"] = call("POST", "/responses", json={
            "model": MODEL, "input": [{"role": "user", "content": [{"type": "input_text", "text": question}]}],
            "conversation": {"id": conversation["id"]}, "tools": tools})
        found["response_no_match"] = call("POST", "/responses", json={
            "model": MODEL, "input": "Who won the football match?", "tools": tools})
        found["response_no_tools"] = call("POST", "/responses", json={"model": MODEL, "input": "hello"})
        found["response_incomplete"] = call("POST", "/responses", json={
            "model": MODEL, "input": question, "tools": tools, "max_output_tokens": 16})
        found["response_retrieved"] = call("GET", f"/responses/{found['response_cited']['id']}")
        found["response_input_items"] = call("GET", f"/responses/{found['response_in_conversation']['id']}/input_items")
        found["conversation_items"] = call("GET", f"/conversations/{conversation['id']}/items",
                                           params={"include[]": "file_search_call.results"})
        found["conversation_items_created"] = call("POST", f"/conversations/{conversation['id']}/items", json={
            "items": [{"type": "message", "role": "user", "content": "thanks"},
                      {"type": "message", "role": "assistant",
                       "content": [{"type": "output_text", "text": "welcome"}]}]})
        found["stream_events"] = events({"model": MODEL, "input": question, "tools": tools,
                                         "include": ["file_search_call.results"]})
        found["stream_events_incomplete"] = events({"model": MODEL, "input": question, "tools": tools,
                                                    "max_output_tokens": 16})
        found["error"] = call("GET", "/files/file-missing")
        found["conversation_deleted"] = call("DELETE", f"/conversations/{conversation['id']}")
        found["vs_file_deleted"] = call("DELETE", f"/vector_stores/{store['id']}/files/{file_id}")
        found["vector_store_deleted"] = call("DELETE", f"/vector_stores/{store['id']}")
        found["file_deleted"] = call("DELETE", f"/files/{file_id}")
    return found


def test_payloads_show_the_states_they_stand_for(payloads: dict[str, Any]) -> None:
    assert payloads["vs_file_in_progress"]["status"] == "in_progress"
    assert payloads["vs_file_completed"]["status"] == "completed"
    assert payloads["vs_file_failed"]["last_error"]["code"] == "unsupported_file"
    assert _message(payloads["response_cited"])["content"][0]["annotations"]
    assert _message(payloads["response_no_match"])["content"][0]["annotations"] == []
    assert payloads["response_cited"]["output"][0]["type"] == "reasoning"
    assert payloads["response_incomplete"]["status"] == "incomplete"
    assert payloads["stream_events_incomplete"][-1]["type"] == "response.incomplete"
    assert payloads["error"]["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("case", sorted(CASES))
def test_payload_parses_with_the_sdk_types_in_strict_mode(payloads: dict[str, Any], case: str) -> None:
    check, _ = CASES[case]
    check(payloads[case])


def _message(response: dict[str, Any]) -> dict[str, Any]:
    return next(item for item in response["output"] if item["type"] == "message")


def _as_documented(event: dict[str, Any]) -> dict[str, Any]:
    """A stream event with the one known gap between OpenAI's stream and its document closed: real
    in-progress snapshots carry ``usage: null``, which the document's Response does not allow."""
    snapshot = event.get("response")
    if event["type"] in ("response.created", "response.in_progress") and snapshot is not None:
        assert snapshot["usage"] is None
        return dict(event, response={k: v for k, v in snapshot.items() if k != "usage"})
    return event


@pytest.mark.parametrize("case", sorted(CASES))
def test_payload_matches_the_openapi_document(payloads: dict[str, Any], openapi: Any, case: str) -> None:
    _, schema = CASES[case]
    instances = ([_as_documented(event) for event in payloads[case]] if case.startswith("stream_events")
                 else [payloads[case]])
    problems = [f"{index}: {problem}" for index, instance in enumerate(instances)
                for problem in openapi.errors(schema, instance)]
    assert problems == []


@pytest.mark.parametrize("case", ["conversation_items", "stream_events"])
def test_nested_items_match_their_own_schemas(payloads: dict[str, Any], openapi: Any, case: str) -> None:
    # Checked one by one so that a failure names the item, not only the union it belongs to.
    if case == "conversation_items":
        pairs = [("ConversationItem", item) for item in payloads[case]["data"]]
    else:
        pairs = [("OutputItem", event["item"]) for event in payloads[case] if "item" in event]
    problems = [problem for schema, item in pairs for problem in openapi.errors(schema, item)]
    assert problems == []
