"""Responses through the real SDK: cited answers, filters, store limits, conversations, streaming, limits."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from typing import Any

import httpx2
import openai
import pytest

from openai.types.conversations import Message
from openai.types.responses import (EasyInputMessageParam, Response, ResponseCompletedEvent, ResponseCreatedEvent,
                                    ResponseFileSearchToolCall, ResponseInputText, ResponseOutputMessage,
                                    ResponseOutputText, ResponseTextDeltaEvent)

from local.openai_standin import StandinServer

MODEL = "gpt-6-luna"
REFUNDS = ("Customer handbook. Refunds are accepted within 30 days of purchase. "
           "The item must be unused and in its original packaging.")
HOLIDAYS = ("Office guide. The office closes on public holidays. "
            "Staff may work remotely on Fridays with the approval of their manager.")


def _file_search(*vector_store_ids: str, **options: Any) -> list[Any]:
    return [{"type": "file_search", "vector_store_ids": list(vector_store_ids), **options}]


def _search_call(response: Response) -> ResponseFileSearchToolCall:
    item = next(item for item in response.output if item.type != "reasoning")
    assert isinstance(item, ResponseFileSearchToolCall)
    return item


def _answer(response: Response) -> tuple[ResponseOutputMessage, ResponseOutputText]:
    message = response.output[-1]
    assert isinstance(message, ResponseOutputMessage)
    text = message.content[0]
    assert isinstance(text, ResponseOutputText)
    return message, text


def _citations(response: Response) -> list[str]:
    return [annotation.file_id for annotation in _answer(response)[1].annotations
            if annotation.type == "file_citation"]


@pytest.fixture
def library(vector_store: str, add_document: Callable[..., str]) -> dict[str, str]:
    """One store holding two documents, tagged with their document ids."""
    return {
        "store": vector_store,
        "refunds": add_document(vector_store, "refunds.txt", REFUNDS, document_id="doc-refunds", user_id="u-1"),
        "holidays": add_document(vector_store, "holidays.md", HOLIDAYS, document_id="doc-holidays", user_id="u-1"),
    }


def test_answer_quotes_and_cites_the_document_that_holds_it(client: openai.OpenAI, library: dict[str, str]) -> None:
    # when a question answered by one of two documents is asked
    response = client.responses.create(model=MODEL, input="Within how many days are refunds accepted?",
                                       tools=_file_search(library["store"]), include=["file_search_call.results"])
    # then a file search ran and the answer quotes and cites that document only
    search, (message, text) = _search_call(response), _answer(response)
    assert [item.type for item in response.output] == ["reasoning", "file_search_call", "message"] and search.status == "completed"
    assert search.id.startswith("fs_") and search.queries == ["Within how many days are refunds accepted?"]
    assert search.results is not None and search.results[0].file_id == library["refunds"]
    assert search.results[0].attributes == {"document_id": "doc-refunds", "user_id": "u-1"}
    assert message.role == "assistant" and message.status == "completed"
    assert "30 days" in response.output_text
    assert _citations(response) == [library["refunds"]]
    annotation = text.annotations[0]
    assert annotation.type == "file_citation" and annotation.filename == "refunds.txt"
    assert 0 < annotation.index <= len(response.output_text)
    assert response.status == "completed" and response.model == MODEL


def test_results_are_null_unless_included(client: openai.OpenAI, library: dict[str, str]) -> None:
    response = client.responses.create(model=MODEL, input="refunds", tools=_file_search(library["store"]))
    assert _search_call(response).results is None


def test_in_filter_restricts_retrieval_to_listed_documents(client: openai.OpenAI, library: dict[str, str]) -> None:
    # given a filter that admits only the holidays document
    only_holidays = {"type": "in", "key": "document_id", "value": ["doc-holidays"]}
    # when asking about refunds
    response = client.responses.create(model=MODEL, input="Within how many days are refunds accepted?",
                                       tools=_file_search(library["store"], filters=only_holidays),
                                       include=["file_search_call.results"])
    # then the refunds document is never retrieved, and the answer says the documents lack it
    assert _search_call(response).results == []
    assert _citations(response) == []
    assert "do not contain" in response.output_text
    # and a compound filter admitting it finds it again
    both = {"type": "and", "filters": [{"type": "eq", "key": "user_id", "value": "u-1"},
                                       {"type": "nin", "key": "document_id", "value": ["doc-holidays"]}]}
    found = client.responses.create(model=MODEL, input="refunds accepted", tools=_file_search(library["store"],
                                                                                             filters=both))
    assert _citations(found) == [library["refunds"]]


def test_a_store_not_named_is_never_searched(client: openai.OpenAI, library: dict[str, str],
                                             add_document: Callable[..., str]) -> None:
    # given a second store holding the only document about parking
    other = client.vector_stores.create(name="someone else's").id
    add_document(other, "parking.txt", "Parking permits renew every year in January.")
    # when the question names only the first store
    response = client.responses.create(model=MODEL, input="When do parking permits renew?",
                                       tools=_file_search(library["store"]))
    # then nothing from the second store is cited
    assert _citations(response) == []
    # and naming both stores finds it
    both = client.responses.create(model=MODEL, input="When do parking permits renew?",
                                   tools=_file_search(library["store"], other))
    assert len(_citations(both)) == 1


def test_more_than_two_vector_stores_is_a_bad_request(client: openai.OpenAI) -> None:
    stores = [client.vector_stores.create(name=f"s{n}").id for n in range(3)]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="anything", tools=_file_search(*stores))
    assert "maximum of 2 vector stores allowed" in caught.value.message


def test_unknown_vector_store_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="anything", tools=_file_search("vs_missing"))


def test_conversation_turns_accumulate_items_and_cache_the_prefix(client: openai.OpenAI,
                                                                  library: dict[str, str]) -> None:
    # given a conversation
    conversation = client.conversations.create(metadata={"session": "s-1"})
    tools = _file_search(library["store"])
    # when two turns are taken in it
    first = client.responses.create(model=MODEL, input="When does the office close?", conversation=conversation.id,
                                    tools=tools, instructions="Answer from the documents.")
    follow_up = EasyInputMessageParam(role="user", content="Can staff work remotely?")
    second = client.responses.create(model=MODEL, input=[follow_up],
                                     conversation={"id": conversation.id}, tools=tools,
                                     instructions="Answer from the documents.")
    # then each turn added its input and output items, listed newest first by default
    items = client.conversations.items.list(conversation.id)
    kinds = [(item.type, getattr(item, "role", None)) for item in items.data]
    assert kinds == [("message", "assistant"), ("file_search_call", None), ("reasoning", None),
                     ("message", "user")] * 2
    oldest_first = client.conversations.items.list(conversation.id, order="asc", limit=3)
    first_item = oldest_first.data[0]
    assert isinstance(first_item, Message) and isinstance(first_item.content[0], ResponseInputText)
    assert first_item.content[0].text == "When does the office close?"
    assert oldest_first.has_more is True
    # and the later turn sees the earlier one as cached input
    assert first.conversation is not None and first.conversation.id == conversation.id
    assert first.usage is not None and second.usage is not None
    assert first.usage.input_tokens_details.cached_tokens == 0
    assert 0 < second.usage.input_tokens_details.cached_tokens < second.usage.input_tokens
    assert second.usage.input_tokens > first.usage.input_tokens
    assert second.usage.total_tokens == second.usage.input_tokens + second.usage.output_tokens
    assert _citations(second) == [library["holidays"]]


def test_conversation_items_can_be_added_and_removed(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(items=[{"type": "message", "role": "user", "content": "hello"}])
    added = client.conversations.items.create(conversation.id, items=[
        EasyInputMessageParam(type="message", role="assistant", content="hi")])
    assert added.first_id == added.last_id and added.has_more is False
    everything = [item.id for item in client.conversations.items.list(conversation.id, order="asc")]
    assert everything[-1] == added.last_id and len(everything) == 2
    client.conversations.items.delete(added.last_id, conversation_id=conversation.id)
    assert len(client.conversations.items.list(conversation.id).data) == 1
    updated = client.conversations.update(conversation.id, metadata={"topic": "greeting"})
    assert updated.metadata == {"topic": "greeting"}
    assert client.conversations.delete(conversation.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)


def test_conversation_and_previous_response_are_exclusive(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    previous = client.responses.create(model=MODEL, input="hello")
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="again", conversation=conversation.id,
                                previous_response_id=previous.id)


def test_stream_yields_openai_event_order_and_final_usage(client: openai.OpenAI, library: dict[str, str]) -> None:
    # when an answer is streamed
    stream = client.responses.create(model=MODEL, input="Within how many days are refunds accepted?",
                                     tools=_file_search(library["store"]), stream=True)
    with stream:
        events = list(stream)
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["x-request-id"].startswith("req_")
    # then the events come in OpenAI's order with increasing sequence numbers
    kinds = [event.type for event in events]
    runs = [(kind, len(list(group))) for kind, group in groupby(kinds)]
    assert [kind for kind, _ in runs] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.output_item.done",
        "response.output_item.added", "response.file_search_call.in_progress", "response.file_search_call.searching",
        "response.file_search_call.completed", "response.output_item.done", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta", "response.output_text.annotation.added",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]
    assert dict(runs)["response.output_text.delta"] >= 2
    assert [event.sequence_number for event in events] == list(range(len(events)))
    # and the deltas add up to the final text, which the completed event carries with its usage
    created, completed = events[0], events[-1]
    assert isinstance(created, ResponseCreatedEvent) and isinstance(completed, ResponseCompletedEvent)
    deltas = "".join(event.delta for event in events if isinstance(event, ResponseTextDeltaEvent))
    assert deltas == completed.response.output_text and "30 days" in deltas
    assert completed.response.usage is not None and completed.response.usage.output_tokens > 0
    assert created.response.usage is None


def test_stream_helper_collects_the_final_response(client: openai.OpenAI, library: dict[str, str]) -> None:
    with client.responses.stream(model=MODEL, input="Do staff work remotely on Fridays?",
                                 tools=_file_search(library["store"])) as stream:
        final = stream.get_final_response()
    assert _citations(final) == [library["holidays"]]


def test_max_output_tokens_truncates_and_marks_incomplete(client: openai.OpenAI, library: dict[str, str]) -> None:
    response = client.responses.create(model=MODEL, input="Within how many days are refunds accepted?",
                                       tools=_file_search(library["store"]), max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert _answer(response)[0].status == "incomplete"
    assert response.usage is not None and response.usage.output_tokens <= 16
    assert len(response.output_text) <= 16 * 4


def test_max_output_tokens_below_16_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="hello", max_output_tokens=15)
    assert caught.value.code == "integer_below_min_value"


def test_max_tool_calls_zero_skips_the_search(client: openai.OpenAI, library: dict[str, str]) -> None:
    response = client.responses.create(model=MODEL, input="refunds", tools=_file_search(library["store"]),
                                       max_tool_calls=0)
    assert [item.type for item in response.output] == ["reasoning", "message"]


def test_stored_responses_can_be_retrieved_and_deleted(client: openai.OpenAI, library: dict[str, str]) -> None:
    created = client.responses.create(model=MODEL, input="refunds", tools=_file_search(library["store"]),
                                      metadata={"turn": "1"}, safety_identifier="user-hash")
    fetched = client.responses.retrieve(created.id)
    assert fetched.output_text == created.output_text
    assert (fetched.metadata, fetched.safety_identifier) == ({"turn": "1"}, "user-hash")
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    unstored = client.responses.create(model=MODEL, input="refunds", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_unknown_parameters_and_missing_model_are_refused(client: openai.OpenAI, standin: StandinServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="hello", extra_body={"temprature": 0.2})
    assert caught.value.code == "unknown_parameter"
    missing = httpx2.post(f"{standin.base_url}/responses", json={"input": "hello"},
                          headers={"Authorization": "Bearer sk-local"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "model"
