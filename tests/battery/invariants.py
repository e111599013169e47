"""What must hold between the database and OpenAI after any fault and one registry refresh (D4):

- every OpenAI file is some document's file (not a deleted one's), and every vector store some
  user's store;
- every document that says it is usable (ready, processing) points at a file OpenAI has, attached
  to its owner's store and to the store of every user who accepted it as a share; every failed one
  says why; none is left half-way (uploading, deleting);
- every answered turn has its usage rows exactly once; no reservation is left pending;
- every response OpenAI made (and billed) is the answer of a stored turn.

OpenAI's side is read from the stand-in over its HTTP API (as the SDK would list it); responses
cannot be listed at OpenAI, so the stand-in's own record of them is read. The database's side is
read directly, for the assertion only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import psycopg


def _listing(http: httpx.Client, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = http.get(path, params={"limit": 100, **({"after": after} if after else {})})
        page.raise_for_status()
        body = page.json()
        items.extend(body["data"])
        if not body.get("has_more"):
            return items
        after = body["data"][-1]["id"]


def openai_state(base_url: str) -> tuple[set[str], dict[str, set[str]]]:
    """(file ids, store id -> file ids attached) as the stand-in holds them."""
    with httpx.Client(base_url=base_url, headers={"Authorization": "Bearer sk-local"}, timeout=30) as http:
        files = {f["id"] for f in _listing(http, "/files")}
        stores = {s["id"]: {f["id"] for f in _listing(http, f"/vector_stores/{s['id']}/files")}
                  for s in _listing(http, "/vector_stores")}
    return files, stores


def billed_responses(standin: Any) -> dict[str, str]:
    """Response id -> status of every response the in-process stand-in has made."""
    return {response_id: str(r["payload"]["status"]) for response_id, r in dict(standin.state.responses).items()}


def violations(database_url: str, openai_base_url: str, responses: Mapping[str, str] | None = None) -> list[str]:
    """Every broken invariant, one line each (empty when all hold). ``responses`` (from
    :func:`billed_responses`) adds the check that each completed or incomplete one is a stored turn."""
    files, stores = openai_state(openai_base_url)
    with psycopg.connect(database_url) as conn:
        docs = conn.execute("select d.id::text, d.status, d.openai_file_id, d.error, p.vector_store_id"
                            " from public.documents d join public.user_profiles p on p.id = d.user_id").fetchall()
        user_stores = {r[0] for r in conn.execute(
            "select vector_store_id from public.user_profiles where vector_store_id is not null").fetchall()}
        pending = conn.execute("select count(*) from public.chat_messages where status = 'pending'").fetchone()
        unbilled = conn.execute(
            "select m.id::text, count(u.id) from public.chat_messages m"
            " left join public.usage_logs u on u.message_id = m.id and u.service = 'chat'"
            " where m.role = 'assistant' and m.status = 'complete' group by m.id having count(u.id) <> 1").fetchall()
        placed = conn.execute(
            "select d.id::text, d.openai_file_id, up.vector_store_id from public.document_access a"
            " join public.documents d on d.id = a.document_id join public.user_profiles up on up.id = a.user_id"
            " where d.status in ('ready', 'processing')").fetchall()
        answered = {r[0] for r in conn.execute(
            "select openai_response_id from public.chat_messages"
            " where status = 'complete' and openai_response_id is not null").fetchall()}
    found: list[str] = []
    found += [f"shared document {doc_id} is not in a grantee's store" for doc_id, file_id, store in placed
              if file_id not in stores.get(store or "", set())]
    found += [f"OpenAI response {r} was billed but no stored turn answers with it"
              for r, status in sorted((responses or {}).items())
              if status in ("completed", "incomplete") and r not in answered]
    live_files = {file_id for _, status, file_id, _, _ in docs if file_id and status != "deleted"}
    found += [f"OpenAI file {f} belongs to no live document" for f in sorted(files - live_files)]
    found += [f"vector store {s} belongs to no user" for s in sorted(set(stores) - user_stores)]
    for doc_id, status, file_id, error, store in docs:
        if status in ("ready", "processing"):
            if file_id not in files:
                found.append(f"document {doc_id} is {status} but OpenAI has no file {file_id}")
            elif file_id not in stores.get(store or "", set()):
                found.append(f"document {doc_id} is {status} but its file is not in its owner's store")
        elif status == "failed" and not error:
            found.append(f"document {doc_id} failed without saying why")
        elif status in ("uploading", "deleting"):
            found.append(f"document {doc_id} is still {status}")
        elif status == "deleted" and file_id in files:
            found.append(f"document {doc_id} is deleted but OpenAI still has its file")
    if pending is not None and pending[0]:
        found.append(f"{pending[0]} turn(s) left pending with a reservation")
    found += [f"answered turn {message} has {n} chat usage rows" for message, n in unbilled]
    return found
