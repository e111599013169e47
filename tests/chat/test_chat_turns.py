"""Chat turns end to end: upload documents, ask, get answers with quotes found verbatim in the cited
document, everything stored (both messages, tokens, usage rows, cost), the conversation reused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from tests.chat.conftest import Apps, ask, auth, history, total_cost, upload_text, usage_rows_of
from tests.support.openapi import assert_matches_openapi
from tests.support.users import UserFactory

OPENAPI = build_openapi(registered_functions())

COMETS = ("Comets are icy bodies that orbit the Sun. When a comet nears the Sun its ice turns to gas and "
          "forms a glowing coma and a long tail. Halley's comet returns every seventy-six years.")
BAKING = ("Sourdough bread rises because wild yeast ferments the dough. Bakers feed the starter with flour "
          "and water every day. A long cold proof gives the crumb its sour flavour.")
FILLER = " ".join(f"Paragraph {i} of the appendix lists inventory numbers and shelf codes only." for i in range(60))
TWO_PASSAGES = ("Lighthouses guide ships with a rotating lamp and a Fresnel lens. " + FILLER + "\n\n"
                + "Lighthouse keepers once trimmed the lamp wick every night to keep ships safe. " + FILLER)


def _responses_requests(standin: Any) -> list[Any]:
    return [r for r in standin.requests if r.method == "POST" and r.path == "/v1/responses"]


def test_the_answer_cites_the_right_document_with_a_verbatim_quote_and_everything_is_stored(
        apps: Apps, users: UserFactory, database_url: str) -> None:
    # Given a user with two documents on different topics
    user = users.create()
    comets = upload_text(apps, user, "comets.txt", COMETS)
    upload_text(apps, user, "baking.txt", BAKING)
    # When they ask about one of them
    response = ask(apps, user, "How often does Halley's comet return?")
    # Then the answer cites that document with a quote that occurs verbatim in its text
    assert response.status_code == 200, response.json
    assert_matches_openapi(OPENAPI, "POST", "/chat", 200, response.json)
    message = response.json["message"]
    assert message["role"] == "assistant" and message["status"] == "complete" and message["content"]
    assert message["citations"], message
    assert {c["document_id"] for c in message["citations"]} == {comets["id"]}
    for citation in message["citations"]:
        assert citation["name"] == "comets.txt"
        assert citation["quote"] and citation["quote"] in COMETS and len(citation["quote"]) < len(COMETS)
    # And the history holds both messages, the answer with tokens and cost
    session_id = response.json["session_id"]
    stored = history(apps, user, session_id)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[0]["content"] == "How often does Halley's comet return?"
    assert stored[1] == message
    assert message["usage"]["input_tokens"] > 0 and message["usage"]["output_tokens"] > 0
    assert message["usage"]["file_search_calls"] == 1 and Decimal(message["cost_usd"]) > 0
    # And the usage rows (tokens and the search call) add up to the message's cost
    rows = usage_rows_of(database_url, message["id"])
    assert sorted(r["service"] for r in rows) == ["chat", "file_search"]
    assert total_cost(rows) == Decimal(message["cost_usd"])
    # And the session moved: two messages, last activity, cost
    session = apps.sessions.get(f"/{session_id}", headers=auth(user)).json
    assert session["message_count"] == 2 and session["last_message_at"] is not None
    assert Decimal(session["cost_usd"]) == Decimal(message["cost_usd"])
    assert session["title"] == "How often does Halley's comet return?"


def test_a_follow_up_turn_runs_in_the_session_conversation(apps: Apps, users: UserFactory, standin: Any) -> None:
    # Given a session with one answered turn
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    first = ask(apps, user, "What forms the tail of a comet?")
    assert first.status_code == 200, first.json
    session_id = first.json["session_id"]
    standin.clear_requests()
    # When a follow-up is asked in that session
    second = ask(apps, user, "And how often does that famous one return?", session_id=session_id)
    # Then OpenAI got it in the session's conversation, so the earlier turn is its context
    assert second.status_code == 200, second.json
    [request] = _responses_requests(standin)
    conversation = request.json["conversation"]
    assert conversation.startswith("conv_")
    assert second.json["message"]["usage"]["cached_tokens"] > 0  # the earlier turn came along as context
    stored = history(apps, user, session_id)
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    assert second.json["session"]["message_count"] == 4
    # And the first turn's request created that conversation (no second conversation)
    assert not [r for r in standin.requests if r.method == "POST" and r.path == "/v1/conversations"]


def test_two_citations_of_one_file_quote_different_passages(apps: Apps, users: UserFactory) -> None:
    user = users.create()
    doc = upload_text(apps, user, "lighthouses.txt", TWO_PASSAGES)
    response = ask(apps, user, "How did lighthouse lamps keep ships safe?")
    assert response.status_code == 200, response.json
    citations = response.json["message"]["citations"]
    assert len(citations) >= 2, citations
    assert {c["document_id"] for c in citations} == {doc["id"]}
    quotes = [c["quote"] for c in citations]
    assert all(q and q in TWO_PASSAGES for q in quotes)
    assert len(set(quotes)) == len(quotes)


def test_a_question_the_documents_do_not_answer_has_no_citations(apps: Apps, users: UserFactory) -> None:
    user = users.create()
    upload_text(apps, user, "baking.txt", BAKING)
    response = ask(apps, user, "Which planets have rings?")
    assert response.status_code == 200, response.json
    assert response.json["message"]["citations"] == []
