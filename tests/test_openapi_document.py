"""The committed OpenAPI document is exactly what the routes say: a route added, removed or changed
without regenerating it (``python -m common.http.openapi > openapi.json``) fails here."""

from __future__ import annotations

import json
from pathlib import Path

from common.http.openapi import build_openapi
from common.http.registry import registered_functions

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_document_matches_the_routes() -> None:
    committed = json.loads((ROOT / "openapi.json").read_text())
    assert committed == build_openapi(registered_functions())


def test_every_function_on_disk_is_in_the_document() -> None:
    on_disk = {p.parent.name for p in (ROOT / "functions").glob("*/main.py")}
    assert on_disk == {name for name, _ in registered_functions()}
