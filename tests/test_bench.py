"""``./deploy.sh bench --tiny``: every benchmark runs on a few rows and requests and writes both
reports, with round trips counted by the transports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.load import LoadError, LoadSpec, run_load

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    # given a scratch folder; when the bench runs on tiny inputs
    out = tmp_path_factory.mktemp("bench")
    subprocess.run([sys.executable, "-m", "benchmarks.bench", "--tiny", "--out", str(out)], cwd=ROOT,
                   capture_output=True, text=True, timeout=600, check=True)
    return json.loads((out / "BENCHMARKS.json").read_text()), (out / "BENCHMARKS.md").read_text()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback port that takes connections and never answers (the kernel queues them)."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/chat/"


@pytest.fixture
def hanging_up_server() -> Iterator[str]:
    """A loopback port that reads each request and closes the connection without answering."""
    listener = socket.create_server(("127.0.0.1", 0))

    def hang_up() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            with connection:
                connection.recv(65536)  # read first: closing over unread bytes would reset instead

    threading.Thread(target=hang_up, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/chat/"
    listener.close()


def test_a_load_run_whose_requests_all_time_out_names_the_endpoint_and_the_timeout(silent_server: str) -> None:
    # when every request of a load run waits longer than its timeout
    with pytest.raises(LoadError) as failed:
        run_load(LoadSpec(silent_server, "POST", json_body={"message": "hi"}, concurrency=2, requests=4,
                          timeout_seconds=0.3))
    # then the run fails as a load error (what the report shows as "not measured") saying what and why
    assert f"POST {silent_server}" in str(failed.value)
    assert "got no answer within 0.3 s" in str(failed.value)


def test_a_load_run_whose_connections_are_dropped_names_the_error(hanging_up_server: str) -> None:
    with pytest.raises(LoadError) as failed:
        run_load(LoadSpec(hanging_up_server, requests=2, timeout_seconds=5))
    assert f"GET {hanging_up_server}" in str(failed.value)
    assert "got no answer: RemoteDisconnected" in str(failed.value)


@pytest.mark.slow
def test_the_reports_state_the_machine_and_every_goal(figures: tuple[dict[str, Any], str]) -> None:
    data, markdown = figures
    # then both files describe the same run, on this machine
    assert data["environment"]["cpus"] >= 1
    assert data["environment"]["postgresql"][0].isdigit()
    for section in ("## Goals", "## Cold start", "## Warm overhead", "## Streaming", "## Scale"):
        assert section in markdown
    assert markdown.count("| cold start usage |") == 1


@pytest.mark.slow
def test_a_read_makes_one_sql_call_and_no_openai_call_on_each_transport(figures: tuple[dict[str, Any], str]) -> None:
    data, _ = figures
    # then the counting transports saw one list_my_sessions per GET /sessions, and nothing at OpenAI
    for transport in ("psycopg", "supabase"):
        trips = data["warm"][transport]["endpoints"]["GET /sessions"]["round_trips"]
        assert trips["sql"] == {"list_my_sessions": 1}
        assert trips["openai_total"] == 0


@pytest.mark.slow
def test_an_upload_talks_to_openai_and_cold_start_compares_against_the_hello(
        figures: tuple[dict[str, Any], str]) -> None:
    data, _ = figures
    upload = data["warm"]["psycopg"]["endpoints"]["POST /upload (small file)"]["round_trips"]
    # then a steady-state upload sends its file to OpenAI and records it, and the usage function's cold
    # start is measured next to the hellos without importing the OpenAI SDK
    assert upload["openai"].get("POST /v1/files") == 1
    assert upload["sql_total"] >= 2
    usage = data["cold_start"]["functions"]["usage"]
    assert usage["ms"] > 0 and set(data["cold_start"]["hello_ms"]) == {"hello", "hello+db", "hello+db+openai"}
    assert usage["unused_clients_imported"] == []


@pytest.mark.slow
def test_the_registry_refresh_reconciles_every_seeded_file(figures: tuple[dict[str, Any], str]) -> None:
    registry = figures[0]["scale"]["registry_refresh"]
    # then the run completed over every file (each seen in its store and in the file list)
    assert registry["status"] == "completed"
    assert registry["files_seen"] == 2 * registry["files"]
    assert registry["sql_calls"]["registry_apply_store_page"] == registry["stores"]


@pytest.mark.slow
def test_the_chat_floor_makes_the_same_openai_calls_as_a_turn_and_the_turn_s_pieces_are_timed(
        figures: tuple[dict[str, Any], str]) -> None:
    data, markdown = figures
    floors = data["floors"]
    # then on each transport a turn asks OpenAI exactly what the floor asks (a conversation and the
    # stored stream), every SQL call the turn makes is timed, and its quotes ran on a real answer
    for transport in ("psycopg", "supabase"):
        chat = data["warm"][transport]["endpoints"]["POST /chat (turn)"]
        assert chat["round_trips"]["openai"] == floors["model_call_openai"]
        assert set(chat["pieces"]["sql"]) == set(chat["round_trips"]["sql"])
        assert chat["pieces"]["citations"] >= 1 and chat["pieces"]["citation_quotes"]["count"] > 0
    assert floors["model_call_documents"] >= 1
    assert "a chat turn's OpenAI calls made directly" in markdown


@pytest.mark.slow
def test_streaming_applies_the_same_delay_to_both_sides(figures: tuple[dict[str, Any], str]) -> None:
    streaming = figures[0]["streaming"]
    # then the first text waits for the delayed model response on both sides
    delay = streaming["delay_ms"]
    assert streaming["standin_first_text"]["p50_ms"] >= delay
    assert streaming["ours_first_text"]["p50_ms"] >= delay
    assert streaming["ours_first_byte"]["p50_ms"] < delay  # the session event, before the model is asked
