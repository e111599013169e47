"""What the stand-in logs per chat turn, run as ``python -m local.openai_standin`` and in-process.

A process that writes a line per chat turn stops answering once its stderr is a full pipe nobody
reads (about 1,000 turns of 64 bytes fill Linux's 64 KiB): every request thread then waits for the
logging lock behind the one blocked writing. At the default level a turn writes nothing.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from local.openai_standin import StandinServer

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "gpt-6-luna"
NOTES = "Project notes. The budget review is on Friday. The deadline moved to March."
TURNS = 8


class ChildStandin:
    """The stand-in in a child process whose stderr goes to ``log``."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._stderr = log.open("w")
        self._process = subprocess.Popen([sys.executable, "-m", "local.openai_standin", "--port", "0"],
                                         cwd=REPO_ROOT, stderr=self._stderr)
        self.base_url = self._address()

    def _address(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = re.search(r"listening on (http://\S+/v1)", self.log.read_text())
            if found:
                return found.group(1)
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the stand-in did not report its address: {self.log.read_text()[-500:]}")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._stderr.close()


@pytest.fixture
def child(tmp_path: Path) -> Iterator[ChildStandin]:
    server = ChildStandin(tmp_path / "stderr.log")
    yield server
    server.stop()


def test_chat_turns_write_nothing_to_stderr_at_the_default_level(child: ChildStandin) -> None:
    # given a store with a document, and a conversation, on a stand-in run as the local stack runs it
    with openai.OpenAI(api_key="sk-local", base_url=child.base_url, max_retries=0) as client:
        store = client.vector_stores.create(name="notes").id
        uploaded = client.files.create(file=("notes.txt", NOTES.encode()), purpose="assistants")
        client.vector_stores.files.create_and_poll(uploaded.id, vector_store_id=store,
                                                   attributes={"document_id": "doc-1"})
        conversation = client.conversations.create().id
        tools: list[dict[str, object]] = [{"type": "file_search", "vector_store_ids": [store],
                                           "filters": {"type": "in", "key": "document_id", "value": ["doc-1"]}}]
        before = child.log.stat().st_size
        # when turns are asked, plain and streamed, each searching the store
        answers = []
        for n in range(TURNS):
            params = {"model": MODEL, "input": f"When is the budget review? ({n})", "conversation": conversation,
                      "tools": tools, "include": ["file_search_call.results"], "store": True}
            if n % 2:
                with client.responses.create(**params, stream=True) as events:  # type: ignore[call-overload]
                    answers += [e.response.output_text for e in events if e.type == "response.completed"]
            else:
                answers.append(client.responses.create(**params).output_text)  # type: ignore[call-overload]
    # then every turn answered from the document, and stderr did not grow by a byte
    assert len(answers) == TURNS and all("Friday" in answer for answer in answers)
    written = child.log.read_bytes()[before:]
    assert written == b"", f"{len(written)} bytes on stderr over {TURNS} turns: {written[:300]!r}"


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logging_at_info() -> Iterator[_Kept]:
    """The root logger at INFO with a handler that keeps whatever reaches it, as the local stack
    (``logging.basicConfig(level=INFO)``) serves the stand-in in its own process."""
    root, kept = logging.getLogger(), _Kept()
    level = root.level
    root.addHandler(kept)
    root.setLevel(logging.INFO)
    yield kept
    root.removeHandler(kept)
    root.setLevel(level)


def test_a_searching_turn_logs_nothing_below_the_level_the_process_chose(
        standin: StandinServer, client: openai.OpenAI, logging_at_info: _Kept) -> None:
    # given a store with a document on the in-process stand-in
    store = client.vector_stores.create(name="notes").id
    uploaded = client.files.create(file=("notes.txt", NOTES.encode()), purpose="assistants")
    client.vector_stores.files.create_and_poll(uploaded.id, vector_store_id=store)
    logging_at_info.records.clear()
    # when a turn searches it
    response = client.responses.create(model=MODEL, input="When is the budget review?",
                                       tools=[{"type": "file_search", "vector_store_ids": [store]}])
    # then it answered from the document and no record below INFO reached the process's handlers
    assert "Friday" in response.output_text
    assert [(r.name, r.getMessage()) for r in logging_at_info.records if r.levelno < logging.INFO] == []
