"""Documents at OpenAI: files, per-user vector stores and the files in them.

Isolation by construction (D1): each user has one vector store holding exactly the documents that
user may read. Every file is named ``<document id>__<name>`` so a file that never reached a store
(an upload that died part-way) can be traced back to its document; in a store it also carries the
attributes ``document_id`` and ``user_id`` (the owner), which turns filter on.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import openai

from common.errors import UpstreamNotFoundError, UpstreamUnavailableError
from common.openai.errors import translated
from common.uploads import as_sent_to_openai

log = logging.getLogger(__name__)

_SEPARATOR = "__"
_DOCUMENT_PREFIX = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})__")
OBJECT_METADATA_APP = "docchat"  # metadata ``app`` of every vector store and conversation this service makes


def openai_filename(document_id: str, name: str) -> str:
    """The OpenAI file name that carries our document id (the extension drives format detection)."""
    return f"{document_id}{_SEPARATOR}{name}"[:250]


def document_id_from_filename(filename: str | None) -> str | None:
    match = _DOCUMENT_PREFIX.match(filename or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class StoreFile:
    """A file as one vector store holds it."""

    file_id: str
    vector_store_id: str
    status: str  # in_progress | completed | failed | cancelled
    usage_bytes: int
    attributes: dict[str, str | float | bool]
    error: str | None = None
    created_at: int = 0
    request_id: str | None = None

    @property
    def document_id(self) -> str | None:
        value = self.attributes.get("document_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ProjectFile:
    file_id: str
    filename: str
    bytes: int
    created_at: int

    @property
    def document_id(self) -> str | None:
        return document_id_from_filename(self.filename)


@dataclass(frozen=True)
class Store:
    vector_store_id: str
    user_id: str | None
    usage_bytes: int
    created_at: int = 0
    attempt: str | None = None


def _store_file(f: object) -> StoreFile:
    """Our view of an SDK VectorStoreFile (with the OpenAI request id when it came from one request)."""
    last_error = getattr(f, "last_error", None)
    return StoreFile(
        file_id=f.id, vector_store_id=f.vector_store_id, status=f.status,  # type: ignore[attr-defined]
        usage_bytes=getattr(f, "usage_bytes", 0) or 0, attributes=dict(getattr(f, "attributes", None) or {}),
        error=f"{last_error.code}: {last_error.message}" if last_error else None,
        created_at=getattr(f, "created_at", 0) or 0,
        request_id=getattr(f, "_request_id", None),
    )


class DocumentFiles:
    """Files and vector stores for documents; every method raises the project's errors."""

    def __init__(self, client: openai.OpenAI) -> None:
        self._client = client
        self._no_retry = client.with_options(max_retries=0)

    def create_store(self, user_id: str, *, attempts: int = 3) -> str:
        """A new vector store for ``user_id``, made at most once per call.

        The SDK would re-send a timed-out create without an idempotency key (two stores for one call),
        so the create is not retried by the SDK: the store carries an ``attempt`` nonce in its
        metadata, and after a timeout or 5xx the project's stores are searched for that nonce before
        creating again. Raises the last UpstreamUnavailableError after ``attempts`` tries. A store
        that is made but never recorded is removed by :func:`common.openai_orphans.sweep_orphan_stores`.
        """
        attempt = uuid.uuid4().hex
        metadata = {"app": OBJECT_METADATA_APP, "user_id": user_id, "attempt": attempt}
        for number in range(1, attempts + 1):
            try:
                with translated("vector store creation"):
                    store = self._no_retry.vector_stores.create(name=f"docchat-user-{user_id}", metadata=metadata)
            except UpstreamUnavailableError:
                found = self.find_store(attempt)
                if found is not None:
                    log.info("vector store %s for user %s was created by a failed attempt", found, user_id)
                    return found
                if number == attempts:
                    raise
                continue
            log.info("created vector store %s for user %s (openai_request_id=%s)", store.id, user_id,
                     store._request_id)
            return store.id
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def find_store(self, attempt: str) -> str | None:
        """The id of the store a create with this ``attempt`` nonce made, if any (newest first)."""
        after: str | None = None
        while True:
            with translated("vector store lookup"):
                page = self._no_retry.vector_stores.list(limit=100, order="desc",
                                                         **({"after": after} if after else {}))
            for store in page.data:
                if (store.metadata or {}).get("attempt") == attempt:
                    return str(store.id)
            if not page.has_more or not page.data:
                return None
            after = page.data[-1].id

    def delete_store(self, vector_store_id: str) -> bool:
        try:
            with translated("vector store deletion"):
                self._client.vector_stores.delete(vector_store_id)
        except UpstreamNotFoundError:
            return False
        return True

    def upload(self, document_id: str, name: str, content: bytes | IO[bytes], mime_type: str) -> tuple[str, str | None]:
        """Create the OpenAI file; returns (file id, OpenAI request id). A type ``file_search`` cannot
        read is sent converted (see :data:`common.uploads.ACCEPTED_TYPES`). Not retried by the SDK: a
        blind retry could leave a second file (it would still be traceable by its name)."""
        sent_name, sent_content, sent_mime = as_sent_to_openai(name, content, mime_type)
        with translated("file upload"):
            created = self._no_retry.files.create(
                file=(openai_filename(document_id, sent_name), sent_content, sent_mime), purpose="assistants")
        return created.id, created._request_id

    def attach(self, vector_store_id: str, file_id: str, *, document_id: str, owner_id: str) -> StoreFile:
        """Add a file to a store with the attributes retrieval filters on (idempotent at OpenAI)."""
        with translated("vector store attach"):
            attached = self._client.vector_stores.files.create(
                vector_store_id=vector_store_id, file_id=file_id,
                attributes={"document_id": document_id, "user_id": owner_id})
        return _store_file(attached)

    def status(self, vector_store_id: str, file_id: str) -> StoreFile | None:
        """The file's processing state in a store, or None when the store no longer holds it."""
        try:
            with translated("vector store file status"):
                found = self._client.vector_stores.files.retrieve(file_id, vector_store_id=vector_store_id)
        except UpstreamNotFoundError:
            return None
        return _store_file(found)

    def detach(self, vector_store_id: str, file_id: str) -> bool:
        """Remove a file from one store; False when it was not there (already detached)."""
        try:
            with translated("vector store detach"):
                self._client.vector_stores.files.delete(file_id, vector_store_id=vector_store_id)
        except UpstreamNotFoundError:
            return False
        return True

    def delete_file(self, file_id: str) -> bool:
        """Delete the OpenAI file; False when it was already gone."""
        try:
            with translated("file deletion"):
                self._client.files.delete(file_id)
        except UpstreamNotFoundError:
            return False
        return True

    def store_file_pages(self, vector_store_id: str, *, page_size: int = 100,
                         after: str | None = None) -> Iterator[list[StoreFile]]:
        """The files of a store (oldest first, after the file id ``after``), one page per request."""
        while True:
            with translated("vector store file listing"):
                page = self._client.vector_stores.files.list(
                    vector_store_id, limit=page_size, order="asc", **({"after": after} if after else {}))
            items = [_store_file(f) for f in page.data]
            if items:
                yield items
            if not page.has_more or not items:
                return
            after = items[-1].file_id

    def file_pages(self, *, page_size: int = 1000, after: str | None = None) -> Iterator[list[ProjectFile]]:
        """The project's files (purpose assistants, oldest first, after ``after``), one page per request."""
        while True:
            with translated("file listing"):
                page = self._client.files.list(limit=page_size, order="asc", purpose="assistants",
                                               **({"after": after} if after else {}))
            items = [ProjectFile(f.id, f.filename, f.bytes, f.created_at) for f in page.data]
            if items:
                yield items
            if not page.has_more or not items:
                return
            after = items[-1].file_id

    def store_pages(self, *, page_size: int = 100) -> Iterator[list[Store]]:
        """The project's vector stores made by this service (metadata app=docchat)."""
        after: str | None = None
        while True:
            with translated("vector store listing"):
                page = self._client.vector_stores.list(limit=page_size, order="asc",
                                                       **({"after": after} if after else {}))
            items = [Store(s.id, (s.metadata or {}).get("user_id"), s.usage_bytes or 0, s.created_at or 0,
                           (s.metadata or {}).get("attempt"))
                     for s in page.data if (s.metadata or {}).get("app") == OBJECT_METADATA_APP]
            if items:
                yield items
            if not page.has_more or not page.data:
                return
            after = page.data[-1].id

