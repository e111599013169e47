"""Driving the stand-in from another process: the ``/_standin`` controls, the command line, persistence."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import openai
import pytest

from local.openai_standin import StandinServer

REPO_ROOT = Path(__file__).resolve().parents[2]
ServerFactory = Callable[..., StandinServer]
ClientFactory = Callable[..., openai.OpenAI]


def _control(server: StandinServer) -> str:
    return f"http://{server.host}:{server.port}/_standin"


def test_faults_over_http(client: openai.OpenAI, standin: StandinServer) -> None:
    # given a fault added over HTTP
    added = httpx2.post(f"{_control(standin)}/faults", json={"path": "^/files$", "status": 503, "times": 2})
    assert added.status_code == 201
    assert httpx2.get(f"{_control(standin)}/faults").json()["data"][0]["times"] == 2
    # then the SDK meets it
    with pytest.raises(openai.InternalServerError):
        client.files.list()
    # and clearing it over HTTP lets requests through
    assert httpx2.delete(f"{_control(standin)}/faults").status_code == 200
    assert client.files.list().data is not None


def test_bad_faults_over_http_are_refused(standin: StandinServer) -> None:
    assert httpx2.post(f"{_control(standin)}/faults", json={"path": "(", "status": 500}).status_code == 400
    assert httpx2.post(f"{_control(standin)}/faults", json={"status": 500}).status_code == 400
    contradictory = {"path": "x", "drop": True, "status": 500}
    assert httpx2.post(f"{_control(standin)}/faults", json=contradictory).status_code == 400


def test_requests_and_processing_failures_over_http(client: openai.OpenAI, standin: StandinServer) -> None:
    store = client.vector_stores.create(name="remote").id
    file_id = client.files.create(file=("r.txt", b"remote text"), purpose="assistants").id
    answer = httpx2.post(f"{_control(standin)}/processing_failures", json={"file_id": file_id, "code": "invalid_file"})
    assert answer.status_code == 201
    attached = client.vector_stores.files.create_and_poll(file_id, vector_store_id=store)
    assert attached.status == "failed" and attached.last_error is not None
    assert attached.last_error.code == "invalid_file"
    recorded = httpx2.get(f"{_control(standin)}/requests").json()["data"]
    assert {"method": "POST", "path": f"/v1/vector_stores/{store}/files"}.items() <= recorded[-2].items()
    assert recorded[-2]["json"]["file_id"] == file_id
    assert httpx2.delete(f"{_control(standin)}/requests").status_code == 200
    assert httpx2.get(f"{_control(standin)}/requests").json()["data"] == []


def test_processing_time_over_http(client: openai.OpenAI, standin: StandinServer) -> None:
    assert httpx2.put(f"{_control(standin)}/settings", json={"processing_seconds": 30}).status_code == 200
    assert standin.processing_seconds == 30
    store = client.vector_stores.create(name="slow").id
    file_id = client.files.create(file=("s.txt", b"slow text"), purpose="assistants").id
    client.vector_stores.files.create(vector_store_id=store, file_id=file_id)
    assert client.vector_stores.files.retrieve(file_id, vector_store_id=store).status == "in_progress"
    assert httpx2.put(f"{_control(standin)}/settings", json={"processing_seconds": -1}).status_code == 400


def test_state_survives_a_restart(tmp_path: Path, standin_factory: ServerFactory, make_client: ClientFactory) -> None:
    # given a stand-in persisting to a directory, holding a document and a conversation turn
    first = standin_factory(data_dir=tmp_path)
    client = make_client(first)
    store = client.vector_stores.create(name="persisted").id
    file_id = client.files.create(file=("policy.txt", b"Laptops are replaced every three years."),
                                  purpose="assistants").id
    client.vector_stores.files.create_and_poll(file_id, vector_store_id=store, attributes={"document_id": "d-9"})
    conversation = client.conversations.create().id
    client.responses.create(model="gpt-6-luna", input="How often are laptops replaced?", conversation=conversation,
                            tools=[{"type": "file_search", "vector_store_ids": [store]}])
    first.stop()
    assert (tmp_path / "state.json").exists() and (tmp_path / "blobs" / file_id).exists()
    # when a new stand-in starts on the same directory
    second = standin_factory(data_dir=tmp_path)
    again = make_client(second)
    # then files, stores, attributes and conversations are back, and search works on the reloaded text
    assert again.files.content(file_id).read() == b"Laptops are replaced every three years."
    assert again.vector_stores.files.retrieve(file_id, vector_store_id=store).attributes == {"document_id": "d-9"}
    assert len(again.conversations.items.list(conversation).data) == 4  # question, reasoning, search, answer
    answer = again.responses.create(model="gpt-6-luna", input="When are laptops replaced?",
                                    tools=[{"type": "file_search", "vector_store_ids": [store]}])
    assert "three years" in answer.output_text
    # and new objects still page after the old ones
    newer = again.files.create(file=("new.txt", b"new"), purpose="assistants").id
    assert [f.id for f in again.files.list(order="asc").data] == [file_id, newer]


@pytest.fixture
def cli_server(tmp_path: Path) -> Iterator[str]:
    """``python -m local.openai_standin`` in a child process on a free port; its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "local.openai_standin", "--port", "0", "--data-dir", str(tmp_path / "openai")],
        cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        base_url = None
        for line in process.stderr:
            found = re.search(r"listening on (http://\S+/v1)", line)
            if found:
                base_url = found.group(1)
                break
        assert base_url is not None, "the stand-in did not report its address"
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_command_line_server_answers_the_sdk(cli_server: str) -> None:
    with openai.OpenAI(api_key="sk-local", base_url=cli_server, max_retries=0) as remote:
        uploaded = remote.files.create(file=("cli.txt", b"served from the command line"), purpose="assistants")
        assert remote.files.retrieve(uploaded.id).filename == "cli.txt"
    control = cli_server.removesuffix("/v1") + "/_standin"
    assert httpx2.get(f"{control}/health").json() == {"status": "ok"}
    assert httpx2.get(f"{control}/requests").json()["data"][0]["path"] == "/v1/files"


def test_quota_and_stream_cut_faults_over_http(client: openai.OpenAI, standin: StandinServer) -> None:
    # given an insufficient_quota fault and a stream cut, added over HTTP
    quota = {"path": "^/responses$", "status": 429, "code": "insufficient_quota"}
    assert httpx2.post(f"{_control(standin)}/faults", json=quota).status_code == 201
    cut = {"path": "^/responses$", "cut_after_created": True}
    assert httpx2.post(f"{_control(standin)}/faults", json=cut).status_code == 201
    # then the first turn meets the quota, and the second stream stops after response.created
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="gpt-6-luna", input="hello")
    assert caught.value.code == "insufficient_quota"
    seen: list[str] = []
    created_id = ""
    with pytest.raises(openai.APIConnectionError):
        for event in client.responses.create(model="gpt-6-luna", input="hello", stream=True):
            seen.append(event.type)
            if event.type == "response.created":
                created_id = event.response.id
    assert seen == ["response.created"] and created_id
    # and the response it cut is stored, complete, with its usage
    stored = client.responses.retrieve(created_id)
    assert stored.status == "completed" and stored.usage is not None and stored.usage.output_tokens > 0
    # a cut that also answers a status is contradictory
    bad = {"path": "x", "cut_after_created": True, "status": 500}
    assert httpx2.post(f"{_control(standin)}/faults", json=bad).status_code == 400


def test_reasoning_share_over_http(client: openai.OpenAI, standin: StandinServer) -> None:
    settings = f"{_control(standin)}/settings"
    assert httpx2.put(settings, json={"reasoning_share": 1.5}).status_code == 400
    assert httpx2.put(settings, json={"reasoning_share": 0}).json()["reasoning_share"] == 0
    answer = client.responses.create(model="gpt-6-luna", input="hello")
    assert answer.usage is not None and answer.usage.output_tokens_details.reasoning_tokens == 0
    assert [item.type for item in answer.output] == ["message"]
