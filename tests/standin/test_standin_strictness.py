"""The stand-in refuses what OpenAI refuses, and streams as a recorded real stream does."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest

from local.openai_standin import StandinServer

MODEL = "gpt-6-luna"
_FILTER = {"type": "eq", "key": "document_id", "value": "d-1"}


def _search(store: str = "vs_any", **tool: Any) -> list[dict[str, Any]]:
    return [{"type": "file_search", "vector_store_ids": [store], **tool}]


# refused body -> (param, code) OpenAI answers with
REFUSED_RESPONSES: dict[str, tuple[dict[str, Any], str, str]] = {
    "truncation": ({"truncation": "sometimes"}, "truncation", "invalid_value"),
    "reasoning_effort": ({"reasoning": {"effort": "extreme"}}, "reasoning.effort", "invalid_value"),
    "tool_choice": ({"tool_choice": "whenever"}, "tool_choice", "invalid_value"),
    "service_tier": ({"service_tier": "gold"}, "service_tier", "invalid_value"),
    "text_format": ({"text": {"format": {"type": "yaml"}}}, "text.format.type", "invalid_value"),
    "safety_identifier": ({"safety_identifier": "x" * 100}, "safety_identifier", "string_above_max_length"),
    "filter_key": ({"tools": _search(filters={**_FILTER, "operator": "eq"})}, "tools[0].filters.operator",
                   "unknown_parameter"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_RESPONSES))
def test_responses_refuse_what_openai_refuses(client: openai.OpenAI, case: str) -> None:
    body, param, code = REFUSED_RESPONSES[case]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="hello", extra_body=body)
    assert caught.value.type == "invalid_request_error"
    assert (caught.value.param, caught.value.code) == (param, code)


def test_a_model_refuses_the_efforts_it_does_not_support(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-6.1-sol", input="hello", reasoning={"effort": "none"})
    assert (caught.value.param, caught.value.code) == ("reasoning.effort", "unsupported_value")
    assert client.responses.create(model="gpt-6.1-sol", input="hello", reasoning={"effort": "low"}).reasoning


@pytest.mark.parametrize(("body", "param"), [
    ({"name": "s", "colour": "red"}, "colour"),
    ({"name": "s", "expires_after": {"anchor": "last_active_at", "days": 3, "hours": 1}}, "expires_after.hours"),
])
def test_vector_store_bodies_refuse_unknown_keys(client: openai.OpenAI, body: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/vector_stores", cast_to=object, body=body)
    assert (caught.value.param, caught.value.code) == (param, "unknown_parameter")


def test_a_vector_store_search_refuses_unknown_filter_keys(client: openai.OpenAI, vector_store: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.vector_stores.search(vector_store, query="q", filters={**_FILTER, "extra": 1})  # type: ignore[arg-type]
    assert caught.value.code == "unknown_parameter"


def test_truncation_is_echoed_as_sent(client: openai.OpenAI) -> None:
    assert client.responses.create(model=MODEL, input="hello", truncation="auto").truncation == "auto"
    assert client.responses.create(model=MODEL, input="hello").truncation == "disabled"


def test_without_the_document_the_own_checks_still_run(standin_factory: Any, make_client: Any) -> None:
    # given a stand-in that has no OpenAPI document (the local stack without ../shared)
    bare = standin_factory(openapi_document=None)
    assert bare.schemas is None
    # then its own checks still refuse a bad request
    with pytest.raises(openai.BadRequestError) as caught:
        make_client(bare).responses.create(model=MODEL, input="hello", extra_body={"truncation": "sometimes"})
    assert caught.value.param == "truncation"


def _events(standin: StandinServer, body: dict[str, Any]) -> tuple[httpx2.Headers, list[dict[str, Any]]]:
    with httpx2.Client(base_url=standin.base_url, headers={"Authorization": "Bearer sk-local"}) as http, \
            http.stream("POST", "/responses", json={"model": MODEL, **body, "stream": True}) as answer:
        lines = [line for line in answer.iter_lines() if line.startswith("data: ")]
        return answer.headers, [json.loads(line[len("data: "):]) for line in lines]


def test_the_stream_follows_a_recorded_real_one(standin: StandinServer, client: openai.OpenAI, vector_store: str,
                                                add_document: Any) -> None:
    # given a document holding two facts, so the answer cites twice
    add_document(vector_store, "office.txt", "The office closes at six. Staff may work remotely on Fridays.")
    headers, events = _events(standin, {"input": "When does the office close and can staff work remotely?",
                                        "tools": _search(vector_store)})
    # then early snapshots carry usage null, and reasoning comes first
    assert events[0]["type"] == "response.created" and events[0]["response"]["usage"] is None
    assert events[2]["type"] == "response.output_item.added" and events[2]["item"]["type"] == "reasoning"
    # and each annotation arrives right after the delta that reaches its position, not after all deltas
    text = ""
    for event in events:
        if event["type"] == "response.output_text.delta":
            assert event["obfuscation"]
            text += event["delta"]
        elif event["type"] == "response.output_text.annotation.added":
            assert len(text) >= event["annotation"]["index"] > len(text) - len(previous_delta)
        if event["type"] == "response.output_text.delta":
            previous_delta = event["delta"]
    assert sum(e["type"] == "response.output_text.annotation.added" for e in events) >= 1
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    # and the answer carries OpenAI's rate-limit headers
    assert int(headers["x-ratelimit-remaining-requests"]) > 0 and headers["x-ratelimit-reset-tokens"]


def test_obfuscation_can_be_turned_off(standin: StandinServer) -> None:
    _, events = _events(standin, {"input": "hello", "stream_options": {"include_obfuscation": False}})
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert deltas and all("obfuscation" not in e for e in deltas)


def test_insufficient_quota_is_answered_as_openai_does(standin: StandinServer, client: openai.OpenAI) -> None:
    standin.inject_fault(r"^/responses$", status=429, code="insufficient_quota")
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=MODEL, input="hello")
    assert caught.value.code == "insufficient_quota" and caught.value.type == "insufficient_quota"
    assert "retry-after" not in caught.value.response.headers
