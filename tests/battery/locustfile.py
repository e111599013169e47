"""The load mix for ``locust --headless`` against the served functions (run by test_load.py in its
own process: locust patches the standard library with gevent, which the test process must not get).

Each simulated user takes one token from the JSON list in ``LOAD_TOKENS`` and uploads small
distinct documents, chats (plain and streamed), lists its documents and reads its usage. Every
acknowledged write (201 upload, 200 chat turn) is written as JSON to ``LOAD_RESULTS`` when the run
stops, so the test can check each one is in the database."""

from __future__ import annotations

import itertools
import json
import os
import uuid
from typing import Any

from locust import HttpUser, between, events, task

TOKENS: list[str] = json.loads(os.environ["LOAD_TOKENS"])
_NEXT = itertools.count()
ACKNOWLEDGED: dict[str, list[Any]] = {"documents": [], "turns": []}


class DocumentChatUser(HttpUser):
    """One signed-in user of the product."""

    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {TOKENS[next(_NEXT) % len(TOKENS)]}"

    @task(2)
    def upload(self) -> None:
        body = f"Load note {uuid.uuid4()}: comets return; tails point away from the sun.".encode()
        with self.client.post("/upload", files={"file": ("load.txt", body, "text/plain")}, name="POST /upload",
                              catch_response=True) as answer:
            if answer.status_code == 201:
                ACKNOWLEDGED["documents"].append(answer.json()["id"])
                answer.success()

    @task(3)
    def chat(self) -> None:
        with self.client.post("/chat", json={"message": "Where do comet tails point?"}, name="POST /chat",
                              catch_response=True) as answer:
            if answer.status_code == 200:
                body = answer.json()
                ACKNOWLEDGED["turns"].append({"message_id": body["message"]["id"], "cost_usd": body["cost_usd"]})

    @task(1)
    def chat_streamed(self) -> None:
        self.client.post("/chat", json={"message": "What do my notes say?", "stream": True},
                         name="POST /chat (stream)")

    @task(3)
    def list_documents(self) -> None:
        self.client.get("/upload", name="GET /upload")

    @task(2)
    def usage(self) -> None:
        self.client.get("/usage", name="GET /usage")


@events.test_stop.add_listener
def _write_results(**_: Any) -> None:
    with open(os.environ["LOAD_RESULTS"], "w", encoding="utf-8") as out:
        json.dump(ACKNOWLEDGED, out)
