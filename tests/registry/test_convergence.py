"""After one run, every half-finished upload and delete has converged: no orphan file at OpenAI, no
row pointing at nothing, statuses as OpenAI reports them."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from common.db.base import Identity
from common.db.psycopg_transport import PsycopgDatabase
from common.documents import upload_document
from common.errors import AlreadyRunningError, ConflictError
from common.openai import OpenAIGateway
from common.openai.files import document_id_from_filename
from common.pricing import DEFAULT_TABLE, PriceTable
from common.registry import RegistryRun
from common.settings import RegistrySettings
from common.uploads import check_file
from tests.registry.conftest import RunFactory
from tests.support.factories import sha256_of, share_with
from tests.support.users import AppUser, UserFactory


def _upload(db: PsycopgDatabase, gw: OpenAIGateway, user: AppUser, text: str) -> dict[str, Any]:
    stream = io.BytesIO(text.encode())
    checked = check_file(stream, "notes.txt", max_bytes=1 << 20)
    doc, created = upload_document(db, gw.files, user.identity, checked, stream, max_documents=1000,
                                   max_bytes=1 << 30)
    assert created
    return doc


def _record(db: PsycopgDatabase, user: AppUser, text: str) -> dict[str, Any]:
    return db.call("create_document", {"p_name": "notes.txt", "p_mime_type": "text/plain", "p_size_bytes": len(text),
                                       "p_sha256": sha256_of(text)}, Identity.backend(user.id))


def _doc(database_url: str, doc_id: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select status, openai_file_id, vector_store_id from public.documents where id = %s",
                           [doc_id]).fetchone()
    assert row is not None
    return {"status": row[0], "openai_file_id": row[1], "vector_store_id": row[2]}


def assert_converged(database_url: str, gw: OpenAIGateway) -> None:
    """No OpenAI file without a live document that records it; no live document without its file."""
    files = {f.file_id: f for page in gw.files.file_pages() for f in page}
    with psycopg.connect(database_url) as conn:
        docs = {str(r[0]): r[1:] for r in conn.execute(
            "select id, status, openai_file_id, vector_store_id from public.documents").fetchall()}
    for f in files.values():
        doc = docs.get(f.document_id or "")
        assert doc is not None, f"orphan file {f.file_id}"
        assert doc[0] in ("processing", "ready", "failed") and doc[1] == f.file_id, (f.file_id, doc)
    for doc_id, (status, file_id, store) in docs.items():
        assert status not in ("uploading", "deleting"), (doc_id, status)
        if status in ("processing", "ready"):
            assert file_id in files and gw.files.status(store, file_id) is not None, doc_id


def test_every_half_finished_flow_converges_after_one_run(psycopg_db: PsycopgDatabase, gateway: OpenAIGateway,
                                                          users: UserFactory, make_run: RunFactory,
                                                          database_url: str, standin: Any) -> None:
    db, gw = psycopg_db, gateway
    owner, reader = users.create(), users.create()
    db.call("get_my_profile", {}, reader.identity)
    # An upload that died after the OpenAI file was created, before the store attach (row uploading).
    died_before_attach = _record(db, owner, "died before attach")
    gw.files.upload(died_before_attach["document"]["id"], "a.txt", b"died before attach", "text/plain")
    # An upload that died after the attach, before the row was updated.
    died_after_attach = _record(db, owner, "died after attach")
    file_b, _ = gw.files.upload(died_after_attach["document"]["id"], "b.txt", b"died after attach", "text/plain")
    store = died_after_attach["vector_store_id"] or _upload(db, gw, owner, "first ready doc")["vector_store_id"]
    gw.files.attach(store, file_b, document_id=died_after_attach["document"]["id"], owner_id=owner.id)
    # An upload whose attach failed and was recorded as failed (the file exists, in no store).
    failed = _record(db, owner, "attach failed")
    file_c, _ = gw.files.upload(failed["document"]["id"], "c.txt", b"attach failed", "text/plain")
    db.call("fail_document_upload", {"p_document_id": failed["document"]["id"], "p_error": "upstream_unavailable",
                                     "p_openai_file_id": file_c}, Identity.backend(owner.id))
    # A delete that stopped after detaching, and one that stopped before doing anything at OpenAI.
    half_deleted = _upload(db, gw, owner, "half deleted")
    db.call("begin_document_delete", {"p_document_id": half_deleted["id"]}, owner.identity)
    gw.files.detach(half_deleted["vector_store_id"], half_deleted["openai_file_id"])
    barely_deleted = _upload(db, gw, owner, "barely deleted")
    db.call("begin_document_delete", {"p_document_id": barely_deleted["id"]}, owner.identity)
    # A ready document whose file vanished at OpenAI.
    vanished = _upload(db, gw, owner, "vanished")
    gw.files.detach(vanished["vector_store_id"], vanished["openai_file_id"])
    gw.files.delete_file(vanished["openai_file_id"])
    # A shared document whose access was revoked, but whose file is still in the reader's store.
    shared = _upload(db, gw, owner, "shared then revoked")
    grant = share_with(db, owner, shared, reader)
    reader_store = gw.files.create_store(reader.id)
    db.call("set_user_vector_store", {"p_vector_store_id": reader_store}, Identity.backend(reader.id))
    gw.files.attach(reader_store, shared["openai_file_id"], document_id=shared["id"], owner_id=owner.id)
    db.call("revoke_document_share", {"p_document_id": shared["id"], "p_share_id": grant["share_id"]},
            Identity.backend(owner.id))
    # A file in a store that no document knows.
    stray_doc = str(uuid.uuid4())
    stray, _ = gw.files.upload(stray_doc, "stray.txt", b"stray", "text/plain")
    gw.files.attach(store, stray, document_id=stray_doc, owner_id=owner.id)

    run = make_run().execute()

    assert run["status"] == "completed"
    figures = run["figures"]
    assert figures["adopted"] >= 2 and figures["missing"] == 1 and figures["unknown"] >= 1
    assert figures["removed"] >= 2 and figures["detached"] == 1 and figures["deletes_finished"] == 2
    # Attached by this run: OpenAI is indexing it (the next run or a GET sees it ready).
    assert _doc(database_url, died_before_attach["document"]["id"])["status"] in ("processing", "ready")
    assert _doc(database_url, died_after_attach["document"]["id"])["status"] == "ready"
    assert _doc(database_url, failed["document"]["id"]) == {"status": "failed", "openai_file_id": None,
                                                           "vector_store_id": None}
    assert _doc(database_url, half_deleted["id"])["status"] == "deleted"
    assert _doc(database_url, barely_deleted["id"])["status"] == "deleted"
    assert _doc(database_url, vanished["id"])["status"] == "missing"
    assert gw.files.status(reader_store, shared["openai_file_id"]) is None
    assert gw.files.status(shared["vector_store_id"], shared["openai_file_id"]) is not None
    assert all(document_id_from_filename(f.filename) != stray_doc for p in gw.files.file_pages() for f in p)
    assert_converged(database_url, gw)
    # The last run's figures are readable through one SQL function.
    assert db.call("registry_last_run", {}, Identity.service())["figures"]["adopted"] == figures["adopted"]


def test_documents_follow_openai_processing(psycopg_db: PsycopgDatabase, gateway: OpenAIGateway, users: UserFactory,
                                            make_run: RunFactory, database_url: str, standin: Any) -> None:
    user = users.create()
    standin.processing_seconds = 1.0
    try:
        slow = _upload(psycopg_db, gateway, user, "still being indexed")
        assert slow["status"] == "processing"
        standin.fail_processing(None, code="invalid_file", message="cannot parse")
        broken = _upload(psycopg_db, gateway, user, "will fail to index")
        make_run().execute()
        assert _doc(database_url, slow["id"])["status"] == "processing"
    finally:
        standin.processing_seconds = 0
    time.sleep(1.1)  # OpenAI finishes indexing
    make_run().execute()
    assert _doc(database_url, slow["id"])["status"] == "ready"
    assert _doc(database_url, broken["id"])["status"] == "failed"


def test_the_grace_period_protects_uploads_in_flight(psycopg_db: PsycopgDatabase, gateway: OpenAIGateway,
                                                     users: UserFactory, make_run: RunFactory, database_url: str) -> None:
    user = users.create()
    in_flight = _record(psycopg_db, user, "in flight right now")
    file_id, _ = gateway.files.upload(in_flight["document"]["id"], "f.txt", b"in flight right now", "text/plain")
    make_run(grace_seconds=3600).execute()
    assert _doc(database_url, in_flight["document"]["id"])["status"] == "uploading"
    assert any(f.file_id == file_id for p in gateway.files.file_pages() for f in p)


def test_an_upload_that_never_reached_openai_fails_and_says_why_after_a_cycle(
        psycopg_db: PsycopgDatabase, gateway: OpenAIGateway, users: UserFactory, make_run: RunFactory,
        database_url: str) -> None:
    # given an upload whose process died before any OpenAI call (the row alone, two hours old), and
    # one recorded just now (its request may still be running)
    user = users.create()
    died = _record(psycopg_db, user, "died before OpenAI")["document"]["id"]
    in_flight = _record(psycopg_db, user, "recorded just now")["document"]["id"]
    with psycopg.connect(database_url) as conn:
        conn.execute("update public.documents set updated_at = now() - interval '2 hours' where id = %s", [died])
    # when a run completes a cycle (an hour's grace)
    run = make_run(grace_seconds=3600).execute()
    # then the dead upload says why it failed, the young one is left alone, and the figure counts it
    assert run["status"] == "completed" and run["figures"]["interrupted"] == 1
    with psycopg.connect(database_url) as conn:
        rows = dict(conn.execute("select id::text, status || ' ' || coalesce(error, '') from public.documents"
                                 " where id = any(%s::uuid[])", [[died, in_flight]]).fetchall())
    assert rows[died].startswith("failed upload_interrupted: ") and rows[in_flight] == "uploading "
    # and the same bytes again upload into the same document
    again = _upload(psycopg_db, gateway, user, "died before OpenAI")
    assert again["id"] == died and again["status"] in ("processing", "ready")


def test_two_runs_at_once_one_works_one_reports_already_running(make_run: RunFactory, standin: Any) -> None:
    standin.inject_fault(r"^/vector_stores$", delay=1.5)
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(make_run().execute()))
    first.start()
    time.sleep(0.5)
    with pytest.raises(AlreadyRunningError):
        make_run().execute()
    first.join()
    assert results and results[0]["status"] == "completed"


def test_a_failure_mid_run_is_recorded_and_a_later_run_finishes(psycopg_db: PsycopgDatabase, gateway: OpenAIGateway,
                                                                users: UserFactory, make_run: RunFactory,
                                                                database_url: str, standin: Any) -> None:
    user = users.create()
    died = _record(psycopg_db, user, "died while the provider was down")
    file_id, _ = gateway.files.upload(died["document"]["id"], "d.txt", b"died while the provider was down", "text/plain")
    standin.inject_fault(r"^/files$", method="GET", status=500, times=10)
    with pytest.raises(Exception) as raised:
        make_run().execute()
    assert getattr(raised.value, "code", None) == "upstream_unavailable"
    last = psycopg_db.call("registry_last_run", {}, Identity.service())
    assert last["status"] == "failed" and last["error"].startswith("upstream_unavailable")
    assert last["figures"]["errors"] == 1
    standin.clear_faults()
    assert make_run().execute()["status"] == "completed"
    assert _doc(database_url, died["document"]["id"])["openai_file_id"] == file_id
    assert _doc(database_url, died["document"]["id"])["status"] in ("processing", "ready")


def test_a_run_out_of_time_stops_cleanly_and_the_next_continues(psycopg_db: PsycopgDatabase, gateway: OpenAIGateway,
                                                                users: UserFactory, make_run: RunFactory) -> None:
    user = users.create()
    for i in range(3):
        _upload(psycopg_db, gateway, user, f"timed document {i}")
    ticks = iter(range(0, 10_000))
    partial = make_run(time_budget_seconds=2, clock=lambda: float(next(ticks))).execute()
    assert partial["status"] == "partial"
    state_cursor = psycopg_db.call("registry_begin_run", {"p_lease_seconds": 60}, Identity.service())
    assert state_cursor["cursor"] is not None
    psycopg_db.call("registry_finish_run", {"p_run_id": state_cursor["run_id"], "p_status": "failed",
                                            "p_figures": {}, "p_cursor": state_cursor["cursor"]}, Identity.service())
    assert make_run().execute()["status"] == "completed"


def test_storage_is_accrued_once_a_day_with_the_free_allowance_shared(psycopg_db: PsycopgDatabase,
                                                                      gateway: OpenAIGateway, users: UserFactory,
                                                                      database_url: str) -> None:
    user = users.create()
    doc = _upload(psycopg_db, gateway, user, "storage is billed per GB-day " * 40)
    table = json.loads(DEFAULT_TABLE.read_text())
    table["vector_storage_free_gb"] = "0"
    prices = PriceTable(table)
    day = dt.date(2031, 1, 15)
    settings = RegistrySettings(service_token="t", grace_seconds=0)
    first = RegistryRun(psycopg_db, gateway.files, prices, settings, today=lambda: day).execute()
    again = RegistryRun(psycopg_db, gateway.files, prices, settings, today=lambda: day).execute()
    assert first["figures"]["storage_rows"] >= 1 and again["figures"]["storage_rows"] == 0
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select user_id, quantity, cost_usd, document_id::text from public.usage_logs"
                            " where service = 'vector_storage' and request_id like %s", [f"%:{day}"]).fetchall()
    mine = [r for r in rows if str(r[0]) == user.id]
    assert len(mine) == 1 and mine[0][3] == doc["id"]
    store_bytes = next(s.usage_bytes for page in gateway.files.store_pages() for s in page if s.user_id == user.id)
    assert mine[0][1] == PriceTable.gb_days(store_bytes)
    total_bytes = sum(s.usage_bytes for page in gateway.files.store_pages() for s in page)
    expected = (prices.storage_cost(PriceTable.gb_days(total_bytes)) * Decimal(store_bytes) / Decimal(total_bytes))
    assert mine[0][2] == expected.quantize(Decimal("0.00000001"))
    summary = psycopg_db.call("get_usage_report", {"p_from": str(day), "p_to": str(day)}, user.identity)
    assert [s["service"] for s in summary["by_service"]] == ["vector_storage"]


def test_the_storage_of_a_shared_copy_is_the_owners_cost(psycopg_db: PsycopgDatabase, gateway: OpenAIGateway,
                                                         users: UserFactory, database_url: str) -> None:
    # Given a document its owner shared, accepted by a reader: the file is in both stores
    from common.sharing import accept, invite

    owner, reader = users.create(), users.create()
    doc = _upload(psycopg_db, gateway, owner, "a shared copy costs its owner " * 40)
    invited = invite(psycopg_db, owner.identity, doc["id"], reader.email)
    accept(psycopg_db, gateway.files, reader.identity, invited["share_id"])
    table = json.loads(DEFAULT_TABLE.read_text())
    table["vector_storage_free_gb"] = "0"
    day = dt.date(2031, 2, 1)
    # When a day's storage is accrued
    RegistryRun(psycopg_db, gateway.files, PriceTable(table), RegistrySettings(service_token="t", grace_seconds=0),
                today=lambda: day).execute()
    # Then both copies are one row for the document, charged to its owner; the reader pays nothing
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select user_id::text, document_id::text, cost_usd from public.usage_logs"
                            " where service = 'vector_storage' and created_at = %s::timestamptz"
                            " and user_id in (%s, %s)", [f"{day}T00:00:00Z", owner.id, reader.id]).fetchall()
        stores = dict(conn.execute("select id::text, vector_store_id from public.user_profiles where id in (%s, %s)",
                                   [owner.id, reader.id]).fetchall())
    assert [(r[0], r[1]) for r in rows] == [(owner.id, doc["id"])]
    usage = {s.vector_store_id: s.usage_bytes for page in gateway.files.store_pages() for s in page}
    assert usage[stores[reader.id]] > 0 and rows[0][2] > 0
    # And a second record of the same day is a conflict, not a silent drop
    with pytest.raises(ConflictError):
        psycopg_db.call("registry_record_storage", {"p_day": str(day), "p_rows": [
            {"vector_store_id": stores[owner.id], "usage_bytes": 1, "gb_days": "0.1", "cost_usd": "0.01"}]},
            Identity.service())
