"""Sweeping OpenAI objects that no row claims, run by the scheduled registry refresh.

Vector stores: a store is created before the database can record it, so a create whose answer was
lost (or the loser of two concurrent first uploads, when deleting it failed) leaves a store no
``user_profiles``/``documents`` row names. Every store this service makes carries metadata
``app=docchat``; the sweep lists those, asks the database which are unclaimed (one call per page of
up to 100 stores) and deletes the ones older than the grace period, so a store created moments ago
and about to be recorded is left alone.

Conversations cannot be swept: OpenAI has no ``conversations.list``. Their creation is therefore
never retried (:meth:`common.openai.responses.ChatModel.create_conversation`); a failed attempt is
an error the caller sees, and what it may leave is an empty conversation with no cost.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from common.db.base import Database, Identity
from common.logging import log_event

if TYPE_CHECKING:  # the OpenAI SDK is imported only by the functions that build the client
    from common.openai.files import DocumentFiles

log = logging.getLogger(__name__)


@dataclass
class OrphanSweep:
    """What one sweep saw and did."""

    stores_seen: int = 0
    orphan_stores: int = 0
    orphan_stores_deleted: int = 0
    orphan_stores_in_grace: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep_orphan_stores(db: Database, files: DocumentFiles, grace_seconds: int, *,
                        now: float | None = None) -> OrphanSweep:
    """Delete this service's vector stores that no row claims and that are older than
    ``grace_seconds``; returns the figures. Raises the project's database or OpenAI errors (a store
    deleted before a failure stays deleted; the next run continues)."""
    clock = time.time() if now is None else now
    figures = OrphanSweep()
    for page in files.store_pages():
        figures.stores_seen += len(page)
        unclaimed = set(db.call("find_unclaimed_vector_stores",
                                {"p_vector_store_ids": [store.vector_store_id for store in page]},
                                Identity.service()))
        for store in page:
            if store.vector_store_id not in unclaimed:
                continue
            figures.orphan_stores += 1
            if clock - store.created_at < grace_seconds:
                figures.orphan_stores_in_grace += 1
                continue
            files.delete_store(store.vector_store_id)
            figures.orphan_stores_deleted += 1
            log_event(log, "orphan_store_deleted", vector_store_id=store.vector_store_id, user_id=store.user_id)
    return figures
