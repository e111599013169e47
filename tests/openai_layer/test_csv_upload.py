"""CSV, which file_search cannot read, is sent as a text rendering it reads: the upload becomes
ready and a question about one of its cells is answered with a citation."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from common.db.base import Identity
from common.documents import get_document, upload_document
from common.errors import UnsupportedMediaTypeError
from common.openai.files import document_id_from_filename
from common.openai.responses import TurnRequest
from common.uploads import ACCEPTED_TYPES, check_file
from tests.support.users import UserFactory

OPENAI_FACTS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "openai.md"
PRICES_CSV = (b"product,colour,price_eur\n"
              b"Kettle,red,39.90\n"
              b"Toaster,silver,54.00\n"
              b"Blender,\"green, matte\",89.50\n")


def _supported_by_file_search() -> set[str]:
    """The extensions of file_search's supported-files table, as the reference facts list them."""
    section = OPENAI_FACTS.read_text(encoding="utf-8").split("### 1.2", 1)[1].split("###", 1)[0]
    return set(re.findall(r"`\.([a-z0-9]+) [a-z]+/[^`]+`", section))


def test_every_accepted_type_is_sent_as_a_type_file_search_reads() -> None:
    # given file_search's list of supported types
    supported = _supported_by_file_search()
    assert {"pdf", "docx", "txt", "md", "html", "json"} <= supported and "csv" not in supported
    # then every accepted kind reaches OpenAI under one of them, converted when it is not one itself
    for kind, accepted in ACCEPTED_TYPES.items():
        assert accepted.sent_extension in supported, kind
        assert (accepted.convert is None) == (kind in supported), kind


def test_a_csv_upload_becomes_ready_and_a_cell_is_answered_with_a_citation(
        runtime: Any, users: UserFactory) -> None:
    # given a user uploading a CSV through the real upload flow
    user = users.create()
    stream = io.BytesIO(PRICES_CSV)
    checked = check_file(stream, "prices.csv", max_bytes=1 << 20)
    uploaded, created = upload_document(runtime.database, runtime.openai.files, user.identity, checked, stream,
                                        max_documents=1000, max_bytes=1 << 30)
    # then the document becomes ready and keeps its own name and type
    doc = get_document(runtime.database, runtime.openai.files, user.identity, uploaded["id"])
    assert created and doc["status"] == "ready"
    assert doc["name"] == "prices.csv" and doc["mime_type"] == "text/csv"
    # and OpenAI holds a Markdown rendering, named after the document, one line per row with its headers
    placement = runtime.database.call("get_document_placement", {"p_document_id": doc["id"]},
                                      Identity.backend(user.id))
    uploaded = runtime.openai.client.files.retrieve(placement["openai_file_id"])
    assert uploaded.filename == f"{doc['id']}__prices.csv.md"
    rendering = runtime.openai.client.files.content(placement["openai_file_id"]).read().decode()
    assert "- Row 3: product: Blender; colour: green, matte; price_eur: 89.50" in rendering
    # when the user asks about one cell
    result = runtime.openai.chat.answer(TurnRequest(
        user_id=user.id, message="What is the price of the Blender?", session_id=str(uuid.uuid4()),
        message_id=str(uuid.uuid4()), vector_store_id=placement["vector_store_id"], document_ids=[doc["id"]]))
    # then the answer holds the cell and cites the CSV document
    assert result.status == "completed" and "89.50" in result.text
    assert [c.document_id for c in result.citations] == [doc["id"]]
    assert document_id_from_filename(result.citations[0].filename) == doc["id"]
    assert any("price_eur: 89.50" in chunk.text for chunk in result.retrieved)


def test_a_csv_that_cannot_be_converted_is_refused_before_any_upload() -> None:
    # a quoted cell left open is not a table file_search could be given
    with pytest.raises(UnsupportedMediaTypeError):
        check_file(io.BytesIO(b'name,note\n"open quote,1\n'), "broken.csv", max_bytes=1 << 20)
