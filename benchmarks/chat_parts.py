"""The chat turn's floor and the cost of its pieces.

The floor is the OpenAI work a turn asks for, made directly through the project's own ``ChatModel``
(the same SDK client, stand-in and request: a new conversation, then the turn's stream with
``file_search`` over the user's documents, stored in the conversation, read to its end). A turn's
time beyond it is our code: its SQL calls, citation quotes, response shaping, SSE/JSON and the
framework. The pieces are timed as the turns measured make them (the SQL calls, by a timing
Database under the counting one) or on their own inputs (quotes, shaping of the stored answer).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from benchmarks.timing import Latency, latency_of, time_calls
from common.db.base import Database, Identity
from tests.support.users import AppUser

CHAT_SQL = ("begin_chat_turn", "record_chat_response", "finish_chat_turn")


class TimingDatabase:
    """Wraps a real Database; keeps each SQL function call's duration (seconds) and its last answer."""

    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.seconds: defaultdict[str, list[float]] = defaultdict(list)
        self.last: dict[str, Any] = {}
        self._lock = threading.Lock()

    def call(self, function: str, args: Mapping[str, Any], identity: Identity) -> Any:
        begun = time.perf_counter()
        answer = self.inner.call(function, args, identity)
        elapsed = time.perf_counter() - begun
        with self._lock:
            self.seconds[function].append(elapsed)
            self.last[function] = answer
        return answer

    def close(self) -> None:
        self.inner.close()

    def clear(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.last.clear()


def turn_request(database_url: str, user: AppUser) -> Any:
    """The TurnRequest a new-session turn of ``user`` makes: their store and readable documents."""
    from common.openai.responses import TurnRequest

    with psycopg.connect(database_url) as conn:
        store = conn.execute("select vector_store_id from public.user_profiles where id = %s",
                             [user.id]).fetchone()
        documents = conn.execute("select id::text from public.documents where user_id = %s"
                                 " and status in ('ready', 'processing') order by created_at", [user.id]).fetchall()
    if store is None or store[0] is None or not documents:
        raise RuntimeError(f"user {user.id} has no vector store or no documents to chat over")
    return TurnRequest(user_id=user.id, message="What do my notes say?", session_id=str(uuid.uuid4()),
                       message_id=str(uuid.uuid4()), vector_store_id=store[0],
                       document_ids=[row[0] for row in documents])


def model_calls(model: Any, turn: Any) -> Callable[[], Any]:
    """One turn's OpenAI calls, as the chat function makes them: conversation, then the stream to its end."""
    from dataclasses import replace

    def call() -> Any:
        conversation = model.create_conversation(session_id=turn.session_id)
        return model.answer(replace(turn, conversation_id=conversation))

    return call


def concurrent_latency(call: Callable[[], object], concurrency: int, requests: int) -> Latency:
    """``requests`` calls from ``concurrency`` threads (after one warm-up call): their latency."""
    call()

    def timed(_: int) -> float:
        begun = time.perf_counter()
        call()
        return time.perf_counter() - begun

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        samples = list(pool.map(timed, range(requests)))
    return latency_of(samples, wall_seconds=time.perf_counter() - started)


def measure_floor(model: Any, turn: Any, *, requests: int, concurrencies: tuple[int, ...]) -> dict[str, Any]:
    """The floor of a chat turn at each concurrency, and its OpenAI calls."""
    call = model_calls(model, turn)
    return {f"c{c}": concurrent_latency(call, c, requests * c).to_json() for c in concurrencies}


def sql_pieces(timing: TimingDatabase) -> dict[str, Any]:
    """p50/p95 of each chat-turn SQL call the timed turns made (through the transport)."""
    return {name: latency_of(timing.seconds[name]).to_json() for name in CHAT_SQL if timing.seconds.get(name)}


def code_pieces(model: Any, turn: Any, finished: dict[str, Any] | None, requests: int) -> dict[str, Any]:
    """Our in-process work on one answer: the citation quotes of a stand-in answer, and the shaping
    of a stored answer into the ``done`` event (message_out, session_out, JSON)."""
    from common.citations import quote_citations
    from common.sessions import message_out, session_out

    result = model_calls(model, turn)()
    pieces = {"citation_quotes": time_calls(lambda: quote_citations(result.text, result.citations, result.retrieved),
                                            requests).to_json(),
              "citations": len(result.citations), "retrieved_chunks": len(result.retrieved)}
    if finished is not None:
        def shape() -> str:
            message = message_out(finished["message"])
            return json.dumps({"message": message, "session": session_out(finished["session"])}, default=str)
        pieces["response_shaping"] = time_calls(shape, requests).to_json()
    return pieces
