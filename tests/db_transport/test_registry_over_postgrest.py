"""The registry refresh end to end through SupabaseDatabase: PostgREST's login role, the service
role's grants and Supabase's role settings, as production runs it on a schedule."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from common.db.base import Database, Identity
from common.documents import upload_document
from common.pricing import PriceTable
from common.registry import RegistryRun
from common.settings import RegistrySettings
from common.uploads import check_file
from tests.support.postgrest_emulator import PostgrestEmulator
from tests.support.users import AppUser, UserFactory


def _upload(db: Database, runtime: Any, user: AppUser, text: str) -> dict[str, Any]:
    stream = io.BytesIO(text.encode())
    checked = check_file(stream, "notes.txt", max_bytes=1 << 20)
    doc, created = upload_document(db, runtime.openai.files, user.identity, checked, stream,
                                   max_documents=1000, max_bytes=1 << 30)
    assert created
    return doc


@pytest.mark.slow
def test_a_refresh_over_postgrest_converges_and_records_its_run(
        supabase_db: Database, postgrest: PostgrestEmulator, runtime: Any, users: UserFactory) -> None:
    # given, through the supabase-py transport: a ready document, a delete left half-done, a stray file
    files = runtime.openai.files
    owner = users.create()
    kept = _upload(supabase_db, runtime, owner, "kept through the refresh")
    half_deleted = _upload(supabase_db, runtime, owner, "half deleted")
    supabase_db.call("begin_document_delete", {"p_document_id": half_deleted["id"]}, owner.identity)
    stray_doc = str(uuid.uuid4())
    stray, _ = files.upload(stray_doc, "stray.txt", b"stray", "text/plain")
    files.attach(kept["vector_store_id"], stray, document_id=stray_doc, owner_id=owner.id)
    before = len(postgrest.calls)
    # when the scheduled refresh runs as the service role through PostgREST
    settings = RegistrySettings(service_token="t", grace_seconds=0, time_budget_seconds=60)
    run = RegistryRun(supabase_db, files, PriceTable.load(), settings).execute()
    # then it completed, finished the delete and removed the stray file, every write through the API
    assert run["status"] == "completed", run
    assert run["figures"]["deletes_finished"] == 1 and run["figures"]["removed"] >= 1
    assert files.status(kept["vector_store_id"], kept["openai_file_id"]) is not None
    assert files.status(kept["vector_store_id"], stray) is None
    assert any(name.startswith("registry_") for name in postgrest.calls[before:])
    last = supabase_db.call("registry_last_run", {}, Identity.service())
    assert last["figures"]["deletes_finished"] == 1
