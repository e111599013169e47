"""Warm overhead, round trips and streaming, measured on the running stack (:mod:`benchmarks.stack`).

Every endpoint is driven over HTTP by the load client (:mod:`benchmarks.load`, its own process) as a
client would: p50/p95 and requests/s at each concurrency, next to the bare hello on the same server,
the bare SQL call made with psycopg, and (for a chat turn) the same OpenAI calls made directly
(:mod:`benchmarks.chat_parts`). The overhead of our code is the endpoint's time minus those floors.
The chat turns are asked by a user of their own with a fixed set of documents: the writer's uploads
grow with every run and would make each turn search more.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from benchmarks import chat_parts
from benchmarks.load import LoadError, LoadSpec, run_load
from benchmarks.stack import Deployment, Stack
from benchmarks.timing import Latency, latency_of, time_calls
from tests.support.users import AppUser, UserFactory

READ, CHAT = "GET /sessions", "POST /chat (turn)"
READ_PAGE = 20
CHAT_MESSAGE = {"message": "What do my notes say?"}
CHAT_DOCUMENTS = 3
# Chat turns are measured with 1/CHAT_SHARE of the requests of the other endpoints (and so is their
# floor). All of them now: a full run makes about 2,700 turns against one stand-in process (the floor's,
# both transports', the streaming ones), which used to stall after 1,022, when its unread stderr pipe
# filled with a bm25s debug line per turn (fixed in local/openai_standin/search.py).
CHAT_SHARE = 1


def _auth(user: AppUser) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}"}


def chat_user(deployment: Deployment, users: UserFactory) -> AppUser:
    """A user with CHAT_DOCUMENTS small documents, uploaded through ``deployment``: who asks the turns."""
    user = users.create()
    run_load(LoadSpec(f"{deployment.base_url}/upload/", "POST", _auth(user), upload=True, requests=CHAT_DOCUMENTS,
                      expect=201))
    return user


def endpoint_specs(deployment: Deployment, reader: AppUser, writer: AppUser,
                   chatter: AppUser) -> dict[str, LoadSpec]:
    """The endpoints measured, as load specs of one request (concurrency and count set per run): the
    read as ``reader`` (whose sessions do not change), the writes as ``writer``, the turns as
    ``chatter`` (see :func:`chat_user`)."""
    base = deployment.base_url
    return {
        READ: LoadSpec(f"{base}/sessions/", headers=_auth(reader)),
        "POST /sessions": LoadSpec(f"{base}/sessions/", "POST", _auth(writer), {"title": "A bench session"},
                                   expect=201),
        "POST /upload (small file)": LoadSpec(f"{base}/upload/", "POST", _auth(writer), upload=True, expect=201),
        CHAT: LoadSpec(f"{base}/chat/", "POST", _auth(chatter), CHAT_MESSAGE),
    }


def bare_sql(database_url: str, user: AppUser, function: str, args: str, count: int) -> Latency:
    """The SQL call alone, as the caller, over one psycopg connection: the floor of an endpoint."""
    claims = json.dumps({"sub": user.id, "role": "authenticated"})
    with psycopg.connect(database_url, autocommit=True) as conn:
        def call() -> None:
            with conn.transaction():
                conn.execute("select set_config('role', 'authenticated', true),"
                             " set_config('request.jwt.claims', %s, true)", [claims])
                conn.execute(f"select public.{function}({args})").fetchone()  # noqa: S608 - fixed names
        return time_calls(call, count)


def _with(spec: LoadSpec, concurrency: int, requests: int) -> LoadSpec:
    return replace(spec, concurrency=concurrency, requests=requests)


def round_trips(deployment: Deployment, spec: LoadSpec) -> dict[str, Any]:
    """Database and OpenAI calls of one request, as the transports counted them."""
    deployment.reset_counts()
    run_load(_with(spec, 1, 1))
    return deployment.counts()


def measure_deployment(stack: Stack, deployment: Deployment, users: UserFactory, chatter: AppUser, *,
                       requests: int, concurrencies: tuple[int, ...]) -> dict[str, Any]:
    """Latency per endpoint and concurrency, and round trips per endpoint, for one transport; the read's
    SQL call alone (bare psycopg, and through the transport) for the same user in the same state; the
    chat turn's SQL calls as its c1 run made them (through the transport). An endpoint that does not
    answer as expected is reported "not measured" with its answer."""
    reader, writer = users.create(), users.create()
    for n in range(READ_PAGE):
        deployment.database.inner.call("create_session", {"p_title": f"Session {n}"}, reader.identity)
    endpoints: dict[str, Any] = {}
    chat_sql: dict[str, Any] = {}
    finished: Any = None
    for label, spec in endpoint_specs(deployment, reader, writer, chatter).items():
        try:
            figures = {}
            for c in concurrencies:
                deployment.timing.clear()
                count = max(1, requests * c // CHAT_SHARE) if label == CHAT else requests * c
                figures[f"c{c}"] = run_load(_with(spec, c, count)).to_json()
                if label == CHAT and c == 1:
                    chat_sql = chat_parts.sql_pieces(deployment.timing)
                    finished = deployment.timing.last.get("finish_chat_turn")
            trips = round_trips(deployment, spec)  # after the first request: steady state
        except LoadError as failed:
            endpoints[label] = {"not_measured": str(failed)}
            continue
        endpoints[label] = {"latency": figures, "round_trips": trips}
        if label == CHAT:
            endpoints[label]["pieces"] = {
                "sql": chat_sql,
                **chat_parts.code_pieces(deployment.chat_model, chat_parts.turn_request(stack.database_url, chatter),
                                         finished, requests)}
    args = {"p_limit": READ_PAGE}
    read_sql = {
        "bare_psycopg": bare_sql(stack.database_url, reader, "list_my_sessions", f"p_limit => {READ_PAGE}",
                                 requests).to_json(),
        "through_transport": time_calls(
            lambda: deployment.database.inner.call("list_my_sessions", args, reader.identity), requests).to_json(),
    }
    return {"endpoints": endpoints, "read_sql_list_my_sessions": read_sql}


def measure_floors(stack: Stack, chatter: AppUser, *, requests: int,
                   concurrencies: tuple[int, ...]) -> dict[str, Any]:
    """The floors: the bare hello on the same server, and a chat turn's OpenAI calls made directly
    (through the psycopg deployment's ChatModel and counting client) for ``chatter``'s documents."""
    hello = {f"c{c}": run_load(LoadSpec(stack.hello_url, concurrency=c, requests=requests * c)).to_json()
             for c in concurrencies}
    deployment = stack.deployments["psycopg"]
    turn = chat_parts.turn_request(stack.database_url, chatter)
    model = chat_parts.measure_floor(deployment.chat_model, turn, requests=max(1, requests // CHAT_SHARE),
                                     concurrencies=concurrencies)
    deployment.reset_counts()
    chat_parts.model_calls(deployment.chat_model, turn)()
    return {"hello": hello, "model_call": model, "model_call_openai": deployment.counts()["openai"],
            "model_call_documents": len(turn.document_ids)}


def _first_bytes(url: str, headers: dict[str, str], body_of: Callable[[], dict[str, Any]],
                 marker: bytes) -> tuple[float, float]:
    """Seconds to the first byte of the answer body and to the first line containing ``marker``, from
    before ``body_of`` builds the request (it may make the calls that come first); LoadError when the
    answer is not a 200 stream reaching ``marker`` within 60 s."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        started = time.perf_counter()
        body = body_of()
        conn.request("POST", parts.path, body=json.dumps(body),
                     headers={**headers, "Content-Type": "application/json", "Accept": "text/event-stream"})
        response = conn.getresponse()
        if response.status != 200:
            raise LoadError(f"POST {url} answered {response.status}: {response.read()[:300]!r}")
        first = response.read(1)
        first_byte = time.perf_counter() - started
        seen = first
        while marker not in seen:
            line = response.readline()
            if not line:
                raise LoadError(f"the stream of {url} ended before {marker!r}")
            seen += line
        marked = time.perf_counter() - started
        response.read()
        return first_byte, marked
    except (OSError, http.client.HTTPException) as exc:
        raise LoadError(f"POST {url} got no answer: {type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()


def measure_streaming(stack: Stack, deployment: Deployment, user: AppUser, *, delay_seconds: float,
                      runs: int) -> dict[str, Any]:
    """Time to first byte (and to the first text) of a streamed answer through the chat function, and
    of the stand-in's own stream asked for the same turn (a new conversation, then the turn's request
    as ChatModel builds it), with the stand-in delaying each response (and only it) by ``delay_seconds``
    on both sides. Our first byte is the ``session`` event, sent before the model is asked: the first
    text is the comparable figure."""
    turn = chat_parts.turn_request(stack.database_url, user)

    def standin_body() -> dict[str, Any]:
        conversation = deployment.chat_model.create_conversation(session_id=turn.session_id)
        return {**deployment.chat_model.params(replace(turn, conversation_id=conversation)), "stream": True}

    control = httpx.Client(base_url=stack.standin_url.removesuffix("/v1") + "/_standin", timeout=30)
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    try:
        def delayed(measure: Callable[[], tuple[float, float]], into: list[tuple[float, float]]) -> None:
            control.post("/faults", json={"path": "/responses$", "method": "POST", "delay": delay_seconds,
                                          "times": 1}).raise_for_status()
            into.append(measure())

        for _ in range(runs):
            delayed(lambda: _first_bytes(f"{stack.standin_url}/responses", {"Authorization": "Bearer sk-local"},
                                         standin_body, b"response.output_text.delta"), theirs)
            delayed(lambda: _first_bytes(f"{deployment.base_url}/chat/", _auth(user),
                                         lambda: {**CHAT_MESSAGE, "stream": True}, b"event: delta"), ours)
    except LoadError as failed:
        return {"not_measured": str(failed)}
    finally:
        control.delete("/faults")
        control.close()
    return {
        "delay_ms": delay_seconds * 1000, "runs": runs,
        "standin_first_byte": latency_of([t[0] for t in theirs]).to_json(),
        "standin_first_text": latency_of([t[1] for t in theirs]).to_json(),
        "ours_first_byte": latency_of([t[0] for t in ours]).to_json(),
        "ours_first_text": latency_of([t[1] for t in ours]).to_json(),
    }
