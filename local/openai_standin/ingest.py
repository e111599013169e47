"""Vector-store ingestion: attaching a file, its status over time, and the chunks it makes searchable.

Attaching extracts the file's text at once but reports ``in_progress`` until ``processing_seconds``
have passed since the attach; the status is derived on every read (no background thread), so it
moves to ``completed``, or to ``failed`` with ``last_error`` when the text could not be extracted or
a processing failure was injected. Only ``completed`` files are searched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import not_found
from .extract import ExtractionError, extract_text
from .faults import FaultInjector
from .search import Chunk, chunk_text, matches
from .state import State

logger = logging.getLogger(__name__)


def get_vector_store(state: State, vector_store_id: str) -> dict[str, Any]:
    """The record of ``vector_store_id``; 404 when there is none."""
    record = state.vector_stores.get(vector_store_id)
    if record is None:
        raise not_found(f"No vector store found with id '{vector_store_id}'.", param="vector_store_id")
    return record


def file_status(state: State, record: Mapping[str, Any]) -> str:
    """``in_progress`` until the file's processing time has passed, then ``failed`` or ``completed``."""
    if state.clock() < record["ready_at"]:
        return "in_progress"
    return "failed" if record["failure"] else "completed"


def remaining_seconds(state: State, record: Mapping[str, Any]) -> float:
    """How long the file stays ``in_progress`` (0 when it is done)."""
    return max(0.0, float(record["ready_at"]) - state.clock())


def render_vs_file(state: State, record: Mapping[str, Any]) -> dict[str, Any]:
    """A vector store file record as OpenAI's ``VectorStoreFile``."""
    status = file_status(state, record)
    return {
        "id": record["id"], "object": "vector_store.file", "created_at": record["created_at"],
        "vector_store_id": record["vector_store_id"], "status": status,
        "usage_bytes": record["usage_bytes"] if status == "completed" else 0,
        "last_error": dict(record["failure"]) if status == "failed" else None,
        "chunking_strategy": record["chunking_strategy"], "attributes": dict(record["attributes"]),
    }


def render_vector_store(state: State, record: Mapping[str, Any]) -> dict[str, Any]:
    """A vector store record as OpenAI's ``VectorStore``, with counts and usage derived from its files."""
    counts = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
    usage = 0
    for attached in state.vs_files.get(record["id"], {}).values():
        status = file_status(state, attached)
        counts[status] += 1
        counts["total"] += 1
        if status == "completed":
            usage += attached["usage_bytes"]
    expires_at = None
    if record.get("expires_after"):
        expires_at = (record["last_active_at"] or record["created_at"]) + record["expires_after"]["days"] * 86_400
    if expires_at is not None and state.now() >= expires_at:
        status = "expired"
    else:
        status = "in_progress" if counts["in_progress"] else "completed"
    payload = {
        "id": record["id"], "object": "vector_store", "created_at": record["created_at"], "name": record["name"],
        "usage_bytes": usage, "file_counts": counts, "status": status, "last_active_at": record["last_active_at"],
        "metadata": dict(record["metadata"]), "expires_at": expires_at,
    }
    if record.get("expires_after"):
        payload["expires_after"] = dict(record["expires_after"])
    return payload


def attach_file(state: State, faults: FaultInjector, vector_store_id: str, file_id: str, *,
                attributes: Mapping[str, Any], chunking_strategy: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Attach ``file_id`` to the store and start its ingestion: (record, whether it was attached now).

    Attaching a file that is already in the store updates its attributes and keeps its ingestion.
    Raises a 404 ApiError when the store or the file does not exist.
    """
    with state.reading():
        get_vector_store(state, vector_store_id)
        file_record = state.files.get(file_id)
        if file_record is None:
            raise not_found(f"No file found with id '{file_id}'.", param="file_id")
        existing = state.vs_files.get(vector_store_id, {}).get(file_id)
    if existing is not None:
        with state.changing():
            existing["attributes"] = dict(attributes) if attributes else existing["attributes"]
            return existing, False
    failure, text = _ingest(state, faults, file_id, file_record["filename"])
    with state.changing():
        get_vector_store(state, vector_store_id)
        if file_id not in state.files:
            raise not_found(f"No file found with id '{file_id}'.", param="file_id")
        now = state.clock()
        record = {
            "id": file_id, "seq": state.next_seq(f"vsf:{vector_store_id}:{file_id}"),
            "vector_store_id": vector_store_id,
            "created_at": int(now), "ready_at": now + state.processing_seconds, "failure": failure,
            "usage_bytes": len(text.encode("utf-8")), "attributes": dict(attributes),
            "chunking_strategy": dict(chunking_strategy),
        }
        state.vs_files.setdefault(vector_store_id, {})[file_id] = record
        if failure is None:
            state.texts[file_id] = text
    return record, True


def searchable_chunks(state: State, vector_store_ids: Sequence[str], filters: Mapping[str, Any] | None) -> list[Chunk]:
    """The chunks of the ``completed`` files of these stores whose attributes pass ``filters``."""
    chunks: list[Chunk] = []
    with state.reading():
        for vector_store_id in vector_store_ids:
            for record in state.vs_files.get(vector_store_id, {}).values():
                if file_status(state, record) != "completed":
                    continue
                if filters is not None and not matches(filters, record["attributes"]):
                    continue
                text = text_of(state, record["id"])
                if text is None:
                    continue
                strategy = record["chunking_strategy"]["static"]
                filename = state.files[record["id"]]["filename"]
                for passage in chunk_text(text, strategy["max_chunk_size_tokens"], strategy["chunk_overlap_tokens"]):
                    chunks.append(Chunk(record["id"], filename, passage, dict(record["attributes"])))
    return chunks


def touch(state: State, vector_store_ids: Sequence[str]) -> None:
    """Mark the stores as used now (``last_active_at``, which also pushes back their expiry)."""
    with state.changing():
        for vector_store_id in vector_store_ids:
            if vector_store_id in state.vector_stores:
                state.vector_stores[vector_store_id]["last_active_at"] = state.now()


def _ingest(state: State, faults: FaultInjector, file_id: str, filename: str) -> tuple[dict[str, str] | None, str]:
    """Extract the file's text: (None, text) on success, ({code, message}, "") on failure."""
    injected = faults.take_processing_failure(file_id)
    if injected is not None:
        return {"code": injected.code, "message": injected.message}, ""
    try:
        text = extract_text(filename, state.get_blob(file_id))
    except ExtractionError as exc:
        logger.info("ingestion of %s (%s) failed: %s", file_id, filename, exc.message)
        return {"code": exc.code, "message": exc.message}, ""
    except KeyError:
        logger.error("the bytes of %s are missing", file_id)
        return {"code": "server_error", "message": "The file's content could not be read."}, ""
    return None, text


def text_of(state: State, file_id: str) -> str | None:
    """The extracted text of a completed file (re-extracted after a restart); None when it is gone."""
    cached = state.texts.get(file_id)
    if cached is not None:
        return cached
    record = state.files.get(file_id)
    if record is None:
        return None
    try:
        text = extract_text(record["filename"], state.get_blob(file_id))
    except (ExtractionError, KeyError) as exc:
        logger.error("cannot re-read the text of %s: %r", file_id, exc)
        return None
    state.texts[file_id] = text
    return text
