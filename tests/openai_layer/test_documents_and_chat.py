"""Documents, isolation, answers with citations, streaming and deletes, through the layer."""

from __future__ import annotations

import uuid
from typing import Any

from common.openai import OpenAIGateway
from common.openai.files import document_id_from_filename, openai_filename
from common.openai.responses import TextDelta, TurnRequest, TurnResult, safety_identifier

SOLAR = ("The Helios array on the north roof produces 42 kilowatts at noon. Maintenance of the Helios "
         "array happens every March, when the inverters are inspected.")
RECIPES = ("Grandmother's lemon cake needs four eggs, two lemons and a slow oven. The lemon cake rests "
           "overnight before it is glazed.")


def _store_document(gw: OpenAIGateway, user_id: str, store: str, text: str, name: str) -> tuple[str, str]:
    doc_id = str(uuid.uuid4())
    file_id, request_id = gw.files.upload(doc_id, name, text.encode(), "text/plain")
    assert request_id
    attached = gw.files.attach(store, file_id, document_id=doc_id, owner_id=user_id)
    assert attached.attributes == {"document_id": doc_id, "user_id": user_id}
    return doc_id, file_id


def _turn(user_id: str, store: str | None, docs: list[str], message: str, conversation: str | None = None) -> TurnRequest:
    return TurnRequest(user_id=user_id, message=message, session_id=str(uuid.uuid4()),
                       message_id=str(uuid.uuid4()), vector_store_id=store, document_ids=docs,
                       conversation_id=conversation)


def test_upload_becomes_ready_and_the_answer_cites_it(gateway: OpenAIGateway) -> None:
    user = str(uuid.uuid4())
    store = gateway.files.create_store(user)
    doc_id, file_id = _store_document(gateway, user, store, SOLAR, "solar.txt")
    assert gateway.files.status(store, file_id).status == "completed"  # type: ignore[union-attr]
    result = gateway.chat.answer(_turn(user, store, [doc_id], "How much power does the Helios array produce?"))
    assert result.status == "completed" and "42 kilowatts" in result.text
    assert [c.document_id for c in result.citations] == [doc_id]
    assert result.citations[0].filename == openai_filename(doc_id, "solar.txt")
    assert "Helios" in (result.citations[0].quote or "")
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0 and result.usage.file_search_calls == 1


def test_another_users_question_never_reaches_the_first_users_document(gateway: OpenAIGateway, standin: Any) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    alice_store, bob_store = gateway.files.create_store(alice), gateway.files.create_store(bob)
    alice_doc, alice_file = _store_document(gateway, alice, alice_store, RECIPES, "cake.txt")
    bob_doc, _ = _store_document(gateway, bob, bob_store, SOLAR, "solar.txt")
    standin.clear_requests()
    result = gateway.chat.answer(_turn(bob, bob_store, [bob_doc], "How many eggs does the lemon cake need?"))
    assert all(c.file_id != alice_file for c in result.citations)
    assert "four eggs" not in result.text
    sent = [r for r in standin.requests if r.path == "/v1/responses"][-1].json
    tool = sent["tools"][0]
    assert tool["vector_store_ids"] == [bob_store]
    assert tool["filters"] == {"type": "in", "key": "document_id", "value": [bob_doc]}
    assert sent["safety_identifier"] == safety_identifier(bob) and bob not in sent["safety_identifier"]
    assert alice_doc not in str(sent)


def test_streaming_yields_deltas_then_the_final_usage(gateway: OpenAIGateway) -> None:
    user = str(uuid.uuid4())
    store = gateway.files.create_store(user)
    doc_id, _ = _store_document(gateway, user, store, SOLAR, "solar.txt")
    events = list(gateway.chat.stream(_turn(user, store, [doc_id], "When is the Helios array maintained?")))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert len(deltas) > 1 and isinstance(final, TurnResult)
    assert "".join(d.text for d in deltas) == final.text and "March" in final.text
    assert final.usage.output_tokens > 0 and final.citations and final.citations[0].document_id == doc_id
    assert sum(isinstance(e, TurnResult) for e in events) == 1


def test_conversation_turns_carry_context(gateway: OpenAIGateway) -> None:
    user = str(uuid.uuid4())
    store = gateway.files.create_store(user)
    doc_id, _ = _store_document(gateway, user, store, SOLAR, "solar.txt")
    conversation = gateway.chat.create_conversation(session_id=str(uuid.uuid4()))
    first = gateway.chat.answer(_turn(user, store, [doc_id], "What does the Helios array produce?", conversation))
    second = gateway.chat.answer(_turn(user, store, [doc_id], "And when is it maintained?", conversation))
    assert first.conversation_id == second.conversation_id == conversation
    assert second.usage.cached_tokens > 0
    gateway.chat.delete_conversation(conversation)


def test_bounds_are_sent_with_every_turn(gateway: OpenAIGateway, standin: Any) -> None:
    user = str(uuid.uuid4())
    params = gateway.chat.params(_turn(user, "vs_1", ["d1"], "q"))
    assert params["max_output_tokens"] == 4096 and params["max_tool_calls"] == 2
    assert params["reasoning"] == {"effort": "low"}
    assert params["tools"][0]["max_num_results"] == 8 and params["include"] == ["file_search_call.results"]
    no_docs = gateway.chat.params(_turn(user, None, [], "q"))
    assert "tools" not in no_docs


def test_delete_removes_the_file_from_store_and_file_list(gateway: OpenAIGateway) -> None:
    user = str(uuid.uuid4())
    store = gateway.files.create_store(user)
    _, file_id = _store_document(gateway, user, store, RECIPES, "cake.txt")
    assert gateway.files.detach(store, file_id) is True
    assert gateway.files.status(store, file_id) is None
    assert gateway.files.delete_file(file_id) is True
    assert gateway.files.delete_file(file_id) is False  # already gone: not an error
    listed = [f.file_id for page in gateway.files.file_pages() for f in page]
    assert file_id not in listed


def test_paging_through_more_files_than_one_page_holds(gateway: OpenAIGateway, standin: Any) -> None:
    user = str(uuid.uuid4())
    store = gateway.files.create_store(user)
    ids = [_store_document(gateway, user, store, f"note number {i} about topic {i}", f"n{i}.txt")[1] for i in range(7)]
    standin.clear_requests()
    pages = list(gateway.files.store_file_pages(store, page_size=3))
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [f.file_id for p in pages for f in p] == ids
    assert len([r for r in standin.requests if r.path.endswith(f"{store}/files")]) == 3
    resumed = list(gateway.files.store_file_pages(store, page_size=3, after=ids[3]))
    assert [f.file_id for p in resumed for f in p] == ids[4:]
    project = [f for page in gateway.files.file_pages(page_size=2) for f in page]
    assert {f.file_id for f in project} >= set(ids)
    assert all(document_id_from_filename(f.filename) for f in project if f.file_id in ids)


def test_filenames_carry_the_document_id() -> None:
    doc = str(uuid.uuid4())
    assert document_id_from_filename(openai_filename(doc, "report.pdf")) == doc
    assert document_id_from_filename("report.pdf") is None
    assert len(openai_filename(doc, "x" * 400)) <= 250
