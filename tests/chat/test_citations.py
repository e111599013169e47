"""Quotes for citations: the shortest verbatim passage of the cited file's retrieved chunks that
supports the answer's sentence at the citation, on hand-made cases and on real stand-in output."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from common.citations import best_passage, claim_before, quote_citations
from common.db.psycopg_transport import PsycopgDatabase
from common.openai.responses import RetrievedChunk, TurnRequest, TurnResult
from common.runtime import Runtime
from tests.chat.conftest import Apps, upload_text
from tests.chat.test_chat_turns import TWO_PASSAGES
from tests.support.factories import backend
from tests.support.users import UserFactory

DOC = str(uuid.uuid4())
CHUNK = ("Saturn has the most spectacular rings. Its rings are made of ice and rock. "
         "Jupiter is the largest planet. Jupiter has a faint ring system too.")


@dataclass(frozen=True)
class Cite:
    document_id: str | None
    file_id: str
    filename: str
    index: int


def _chunk(text: str = CHUNK, file_id: str = "file-a", score: float = 0.9) -> RetrievedChunk:
    return RetrievedChunk(document_id=DOC, file_id=file_id, filename=f"{DOC}__planets.txt", text=text, score=score)


def test_the_claim_is_the_sentence_ending_at_the_citation() -> None:
    answer = "Intro line.\nSaturn's rings are ice and rock. Jupiter also has rings."
    assert claim_before(answer, len(answer)) == "Jupiter also has rings."
    first_end = answer.index(" Jupiter")
    assert claim_before(answer, first_end) == "Saturn's rings are ice and rock."
    assert claim_before("Yes.", 4) == "Yes."


def test_the_best_passage_is_the_shortest_verbatim_window_that_covers_the_claim() -> None:
    quote, coverage = best_passage(CHUNK, "The rings are made of ice and rock.")  # type: ignore[misc]
    assert quote == "Its rings are made of ice and rock." and quote in CHUNK and coverage > 0.5
    two = best_passage(CHUNK, "Jupiter is the largest planet and has a faint ring system.")
    assert two is not None and two[0] == "Jupiter is the largest planet. Jupiter has a faint ring system too."
    assert best_passage(CHUNK, "Volcanoes erupt lava.") is None


def test_citations_get_quotes_only_from_their_own_file_and_duplicates_merge() -> None:
    answer = "Rings are made of ice and rock. Also ice and rock rings."
    other = _chunk("Rings are made of ice and rock, say the other file.", file_id="file-b", score=0.99)
    cites = [Cite(None, "file-a", f"{DOC}__planets.txt", answer.index(" Also")),
             Cite(None, "file-a", f"{DOC}__planets.txt", len(answer)),
             Cite("doc-missing", "file-gone", "gone.txt", len(answer))]
    quoted = quote_citations(answer, cites, [other, _chunk()])
    assert [(c.document_id, c.name, c.quote) for c in quoted] == [
        (DOC, "planets.txt", "Its rings are made of ice and rock."),
        ("doc-missing", "gone.txt", None),
    ]
    assert quoted[0].score == 0.9 and quoted[1].score is None


def test_quotes_on_real_stand_in_output(apps: Apps, users: UserFactory, runtime: Runtime,
                                        psycopg_db: PsycopgDatabase) -> None:
    # Given a document in the user's store and a real turn streamed from the stand-in
    user = users.create()
    doc = upload_text(apps, user, "lighthouses.txt", TWO_PASSAGES)
    store = psycopg_db.call("get_document_placement", {"p_document_id": doc["id"]}, backend(user))["vector_store_id"]
    turn = TurnRequest(user_id=user.id, message="How did lighthouse lamps keep ships safe?", session_id="s",
                       message_id="m", vector_store_id=store, document_ids=[doc["id"]])
    [result] = [item for item in runtime.openai.chat.stream(turn) if isinstance(item, TurnResult)]
    assert result.retrieved and all(c.document_id == doc["id"] for c in result.retrieved)
    # When its citations are quoted
    quoted = quote_citations(result.text, result.citations, result.retrieved)
    # Then each quote is a short passage found verbatim in a retrieved chunk of the cited file
    assert len(quoted) == len(result.citations) >= 2
    texts: dict[str, list[str]] = {}
    for chunk in result.retrieved:
        texts.setdefault(chunk.file_id, []).append(chunk.text)
    for citation, original in zip(quoted, sorted(result.citations, key=lambda c: c.index), strict=True):
        assert citation.quote is not None and len(citation.quote) < 400
        assert any(citation.quote in text for text in texts[original.file_id])
        assert citation.quote.split()[-1].rstrip(".") in result.text[:original.index]
