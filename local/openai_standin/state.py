"""The stand-in's state: files, vector stores, conversations and responses, in memory or on disk.

All tables are plain JSON-ready dicts guarded by one re-entrant lock. Readers take
:meth:`State.reading`; writers take :meth:`State.changing`, which writes the whole state to
``<data_dir>/state.json`` atomically (temporary file + rename) when the block ends without error,
so a crash never leaves half a state file. File bytes live in ``<data_dir>/blobs/<file id>`` (or in
memory without a data dir). Every record carries ``seq``, a creation counter used for pagination.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
BLOB_DIR = "blobs"
_FORMAT_VERSION = 1
_BASE62 = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """A fresh object id in OpenAI's style: ``file-`` + 22 base62 characters, else ``<prefix>_`` + hex."""
    if prefix == "file":
        return "file-" + "".join(secrets.choice(_BASE62) for _ in range(22))
    return f"{prefix}_{secrets.token_hex(24)}"


DEFAULT_REASONING_SHARE = 0.5  # a reasoning model at low effort; a recorded medium-effort turn: 448/543

class StateFileError(Exception):
    """The state file on disk cannot be read as a stand-in state."""


class State:
    """Every object the stand-in keeps, with its persistence.

    ``processing_seconds`` is how long a vector store file stays ``in_progress`` after it is attached;
    ``reasoning_share`` the share of a response's output tokens that is reasoning (0 to 0.99).
    """

    def __init__(self, data_dir: Path | None = None, *, processing_seconds: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.data_dir = data_dir
        self.processing_seconds = processing_seconds
        self.reasoning_share = DEFAULT_REASONING_SHARE
        self.clock = clock
        self._lock = threading.RLock()
        self._seq = 0
        self._cursors: dict[str, int] = {}
        self._memory_blobs: dict[str, bytes] = {}
        self.texts: dict[str, str] = {}  # extracted text by file id; a cache, rebuilt from blobs
        self.files: dict[str, dict[str, Any]] = {}
        self.vector_stores: dict[str, dict[str, Any]] = {}
        self.vs_files: dict[str, dict[str, dict[str, Any]]] = {}
        self.conversations: dict[str, dict[str, Any]] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.responses: dict[str, dict[str, Any]] = {}
        if data_dir is not None:
            (data_dir / BLOB_DIR).mkdir(parents=True, exist_ok=True)
            self._load()

    # -- locking and persistence -------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[State]:
        """Hold the lock for a consistent read."""
        with self._lock:
            yield self

    @contextmanager
    def changing(self) -> Iterator[State]:
        """Hold the lock for a change; persist the state when the block succeeds."""
        with self._lock:
            yield self
            self._save()

    def now(self) -> int:
        """The current time in whole seconds, as OpenAI's ``created_at`` fields are."""
        return int(self.clock())

    def next_seq(self, cursor_key: str) -> int:
        """A new creation sequence number, remembered for ``cursor_key`` (e.g. ``"file:file-abc"``)."""
        with self._lock:
            self._seq += 1
            self._cursors[cursor_key] = self._seq
            return self._seq

    def cursor_seq(self, kind: str) -> Callable[[str], int | None]:
        """Look up the sequence number of an object of ``kind`` by id, deleted objects included."""
        def lookup(object_id: str) -> int | None:
            with self._lock:
                return self._cursors.get(f"{kind}:{object_id}")
        return lookup

    def _save(self) -> None:
        if self.data_dir is None:
            return
        document = {
            "version": _FORMAT_VERSION, "seq": self._seq, "cursors": self._cursors, "files": self.files,
            "vector_stores": self.vector_stores, "vs_files": self.vs_files, "conversations": self.conversations,
            "items": self.items, "responses": self.responses,
        }
        _write_atomically(self.data_dir / STATE_FILE, json.dumps(document).encode("utf-8"))

    def _load(self) -> None:
        assert self.data_dir is not None
        path = self.data_dir / STATE_FILE
        if not path.exists():
            return
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StateFileError(f"cannot read {path}: {exc}") from exc
        if not isinstance(document, dict) or document.get("version") != _FORMAT_VERSION:
            raise StateFileError(f"{path} is not a state file of format version {_FORMAT_VERSION}")
        self._seq = document["seq"]
        self._cursors = document["cursors"]
        self.files = document["files"]
        self.vector_stores = document["vector_stores"]
        self.vs_files = document["vs_files"]
        self.conversations = document["conversations"]
        self.items = document["items"]
        self.responses = document["responses"]
        logger.info("loaded %d files and %d vector stores from %s", len(self.files), len(self.vector_stores), path)

    # -- file bytes ----------------------------------------------------------------------------

    def put_blob(self, file_id: str, data: bytes) -> None:
        """Store the bytes of ``file_id`` (written before the record that names them)."""
        if self.data_dir is None:
            with self._lock:
                self._memory_blobs[file_id] = data
            return
        _write_atomically(self.data_dir / BLOB_DIR / file_id, data)

    def get_blob(self, file_id: str) -> bytes:
        """The bytes of ``file_id``; raises KeyError when they are gone."""
        if self.data_dir is None:
            with self._lock:
                return self._memory_blobs[file_id]
        try:
            return (self.data_dir / BLOB_DIR / file_id).read_bytes()
        except FileNotFoundError as exc:
            raise KeyError(file_id) from exc

    def delete_blob(self, file_id: str) -> None:
        """Remove the bytes of ``file_id`` (missing bytes are already removed)."""
        with self._lock:
            self.texts.pop(file_id, None)
            self._memory_blobs.pop(file_id, None)
        if self.data_dir is not None:
            (self.data_dir / BLOB_DIR / file_id).unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
