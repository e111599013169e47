"""Vector stores through the real SDK: ingestion status, failures, attributes, detach, lists, search, formats."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import openai
import pytest

from local.openai_standin import StandinServer

REFUNDS = "Refunds are accepted within 30 days of purchase when the item is unused."


def _upload(client: openai.OpenAI, filename: str, content: bytes) -> str:
    return client.files.create(file=(filename, content), purpose="assistants").id


def test_attach_reads_in_progress_then_completed(client: openai.OpenAI, vector_store: str) -> None:
    # given an uploaded file
    file_id = _upload(client, "refunds.txt", REFUNDS.encode())
    # when it is attached with attributes
    attached = client.vector_stores.files.create(vector_store_id=vector_store, file_id=file_id,
                                                 attributes={"document_id": "doc-1", "version": 2, "shared": False})
    # then the attach answers in_progress, and the next read shows it completed with its indexed size
    assert (attached.id, attached.status, attached.vector_store_id) == (file_id, "in_progress", vector_store)
    assert attached.attributes == {"document_id": "doc-1", "version": 2, "shared": False}
    done = client.vector_stores.files.retrieve(file_id, vector_store_id=vector_store)
    assert done.status == "completed" and done.last_error is None and done.usage_bytes > 0
    store = client.vector_stores.retrieve(vector_store)
    assert store.status == "completed"
    assert (store.file_counts.completed, store.file_counts.total) == (1, 1)
    assert store.usage_bytes == done.usage_bytes


def test_processing_takes_processing_seconds(client: openai.OpenAI, standin: StandinServer, vector_store: str) -> None:
    # given ingestion that takes a moment
    standin.processing_seconds = 0.5
    file_id = _upload(client, "slow.txt", b"slow but steady")
    # when the file is attached
    client.vector_stores.files.create(vector_store_id=vector_store, file_id=file_id)
    # then file and store read in_progress until the time has passed
    assert client.vector_stores.files.retrieve(file_id, vector_store_id=vector_store).status == "in_progress"
    store = client.vector_stores.retrieve(vector_store)
    assert (store.status, store.file_counts.in_progress, store.usage_bytes) == ("in_progress", 1, 0)
    # and the SDK's poll helper, guided by openai-poll-after-ms, sees it complete
    started = time.monotonic()
    polled = client.vector_stores.files.poll(file_id, vector_store_id=vector_store)
    assert polled.status == "completed"
    assert time.monotonic() - started < 3
    assert client.vector_stores.retrieve(vector_store).file_counts.completed == 1


def test_injected_processing_failure_ends_failed(client: openai.OpenAI, standin: StandinServer,
                                                 vector_store: str) -> None:
    file_id = _upload(client, "fine.txt", b"perfectly fine text")
    standin.fail_processing(file_id, code="server_error", message="Ingestion crashed.")
    attached = client.vector_stores.files.create_and_poll(file_id, vector_store_id=vector_store)
    assert attached.status == "failed"
    assert attached.last_error is not None
    assert (attached.last_error.code, attached.last_error.message) == ("server_error", "Ingestion crashed.")
    assert client.vector_stores.retrieve(vector_store).file_counts.failed == 1


def test_failure_for_any_file_hits_the_next_ingestion_only(client: openai.OpenAI, standin: StandinServer,
                                                          vector_store: str) -> None:
    standin.fail_processing(None)
    first = client.vector_stores.files.create_and_poll(_upload(client, "a.txt", b"alpha"), vector_store_id=vector_store)
    second = client.vector_stores.files.create_and_poll(_upload(client, "b.txt", b"beta"), vector_store_id=vector_store)
    assert first.status == "failed" and first.last_error is not None
    assert first.last_error.code == "unsupported_file"
    assert second.status == "completed"


@pytest.mark.parametrize(("filename", "content", "code"), [
    ("broken.txt", b"\x80\x81\xfe not utf-8 \xc3\x28", "invalid_file"),
    ("picture.png", b"\x89PNG\r\n\x1a\n....", "unsupported_file"),
    ("empty.md", b"   \n", "invalid_file"),
    ("fake.pdf", b"this is not a pdf", "invalid_file"),
    ("fake.docx", b"PK\x03\x04 not a real archive", "invalid_file"),
])
def test_unreadable_content_ends_failed(client: openai.OpenAI, vector_store: str, filename: str, content: bytes,
                                        code: str) -> None:
    attached = client.vector_stores.files.create_and_poll(_upload(client, filename, content),
                                                          vector_store_id=vector_store)
    assert attached.status == "failed"
    assert attached.last_error is not None and attached.last_error.code == code


def test_detach_keeps_the_file(client: openai.OpenAI, vector_store: str,
                               add_document: Callable[..., str]) -> None:
    file_id = add_document(vector_store, "keep.txt", "kept after detach")
    deleted = client.vector_stores.files.delete(file_id, vector_store_id=vector_store)
    assert (deleted.id, deleted.deleted, deleted.object) == (file_id, True, "vector_store.file.deleted")
    assert client.files.retrieve(file_id).id == file_id
    assert client.vector_stores.retrieve(vector_store).file_counts.total == 0
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(file_id, vector_store_id=vector_store)


def test_files_list_paginates_and_filters_by_status(client: openai.OpenAI, standin: StandinServer,
                                                    vector_store: str, add_document: Callable[..., str]) -> None:
    # given four completed files and one failed
    done = [add_document(vector_store, f"doc-{n}.txt", f"document number {n}") for n in range(4)]
    standin.fail_processing(None, code="invalid_file")
    failed = client.vector_stores.files.create_and_poll(_upload(client, "bad.txt", b"x"), vector_store_id=vector_store)
    # when listing two at a time
    first = client.vector_stores.files.list(vector_store_id=vector_store, limit=2)
    everything = [f.id for f in client.vector_stores.files.list(vector_store_id=vector_store, limit=2)]
    # then pages follow creation order, newest first, and `filter` selects by status
    assert first.has_more is True and len(first.data) == 2
    assert everything == [failed.id, *done[::-1]]
    completed = client.vector_stores.files.list(vector_store_id=vector_store, filter="completed", order="asc")
    assert [f.id for f in completed.data] == done
    assert [f.id for f in client.vector_stores.files.list(vector_store_id=vector_store, filter="failed").data] == [
        failed.id]
    # and `before` pages back towards the newest
    before = client.vector_stores.files.list(vector_store_id=vector_store, order="asc", before=done[3], limit=2)
    assert [f.id for f in before.data] == done[1:3]


def test_vector_stores_list_paginates(client: openai.OpenAI) -> None:
    ids = [client.vector_stores.create(name=f"paged-{n}", metadata={"suite": "paging"}).id for n in range(3)]
    page = client.vector_stores.list(limit=2)
    assert [s.id for s in page.data] == ids[::-1][:2] and page.has_more
    after = client.vector_stores.list(limit=2, after=ids[1])
    assert ids[0] in [s.id for s in after.data]
    assert client.vector_stores.retrieve(ids[0]).metadata == {"suite": "paging"}


def test_update_and_delete_vector_store(client: openai.OpenAI, vector_store: str) -> None:
    updated = client.vector_stores.update(vector_store, name="renamed", metadata={"owner": "u1"},
                                          expires_after={"anchor": "last_active_at", "days": 7})
    assert (updated.name, updated.metadata) == ("renamed", {"owner": "u1"})
    assert updated.expires_after is not None and updated.expires_after.days == 7
    assert updated.expires_at is not None and updated.expires_at > updated.created_at
    deleted = client.vector_stores.delete(vector_store)
    assert (deleted.deleted, deleted.object) == (True, "vector_store.deleted")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vector_store)


def test_update_attributes_replaces_them(client: openai.OpenAI, vector_store: str,
                                         add_document: Callable[..., str]) -> None:
    file_id = add_document(vector_store, "attrs.txt", "attribute test", document_id="d-1", user_id="u-1")
    updated = client.vector_stores.files.update(file_id, vector_store_id=vector_store,
                                                attributes={"document_id": "d-2"})
    assert updated.attributes == {"document_id": "d-2"}


@pytest.mark.parametrize(("attributes", "code"), [
    ({f"key{n}": n for n in range(17)}, "object_above_max_properties"),
    ({"k" * 65: "v"}, "string_above_max_length"),
    ({"long": "v" * 513}, "string_above_max_length"),
    ({"nested": {"no": "objects"}}, "invalid_type"),
    ({"missing": None}, "invalid_type"),
])
def test_attribute_limits_are_enforced(client: openai.OpenAI, vector_store: str, attributes: dict[str, object],
                                       code: str) -> None:
    file_id = _upload(client, "limits.txt", b"limits")
    with pytest.raises(openai.BadRequestError) as caught:
        client.vector_stores.files.create(vector_store_id=vector_store, file_id=file_id,
                                          attributes=attributes)  # type: ignore[arg-type]
    assert caught.value.code == code


def test_attaching_an_unknown_file_is_not_found(client: openai.OpenAI, vector_store: str) -> None:
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id=vector_store, file_id="file-missing")


def test_search_ranks_the_matching_file_and_applies_filters(client: openai.OpenAI, vector_store: str,
                                                            add_document: Callable[..., str]) -> None:
    refunds = add_document(vector_store, "refunds.txt", REFUNDS, document_id="d-refunds")
    add_document(vector_store, "holidays.txt", "The office closes on public holidays.", document_id="d-holidays")
    found = client.vector_stores.search(vector_store, query="how many days for refunds")
    assert [r.file_id for r in found.data] == [refunds]
    assert 0 < found.data[0].score <= 1 and found.data[0].attributes == {"document_id": "d-refunds"}
    assert found.data[0].content[0].text == REFUNDS
    filtered = client.vector_stores.search(vector_store, query="refunds days",
                                           filters={"type": "eq", "key": "document_id", "value": "d-holidays"})
    assert filtered.data == []


def _pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica, built by hand (no writer library needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def _docx(text: str) -> bytes:
    from docx import Document

    document = Document()
    document.add_paragraph("Heading paragraph")
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("filename", "content"), [
    ("page.html", b"<html><head><style>.x{}</style></head><body><p>Parking permits renew yearly.</p>"
                  b"<script>var permits = 1;</script></body></html>"),
    ("data.json", b'{"topic": "Parking permits renew yearly."}'),
    ("notes.md", b"# Parking\n\nParking permits renew yearly."),
    ("utf16.txt", "Parking permits renew yearly.".encode("utf-16")),
    ("scan.pdf", _pdf("Parking permits renew yearly.")),
    ("memo.docx", _docx("Parking permits renew yearly.")),
])
def test_text_is_extracted_from_every_supported_format(client: openai.OpenAI, vector_store: str,
                                                       add_document: Callable[..., str], filename: str,
                                                       content: bytes) -> None:
    file_id = add_document(vector_store, filename, content)
    found = client.vector_stores.search(vector_store, query="parking permits renew")
    assert [r.file_id for r in found.data] == [file_id]
    text = found.data[0].content[0].text
    assert "renew" in text and "<p>" not in text and "var permits" not in text
