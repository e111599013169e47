"""The committed OpenAPI document is exactly what the routes say: a route added, removed or changed
without regenerating it (``python -m common.http.openapi > openapi.json``) fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from tests.support.openapi import REFERENCE_DIR, require_reference

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_document_matches_the_routes() -> None:
    committed = json.loads((ROOT / "openapi.json").read_text())
    assert committed == build_openapi(registered_functions())


def test_every_function_on_disk_is_in_the_document() -> None:
    on_disk = {p.parent.name for p in (ROOT / "functions").glob("*/main.py")}
    assert on_disk == {name for name, _ in registered_functions()}


def test_a_present_reference_is_returned_as_it_is(tmp_path: Path) -> None:
    document = tmp_path / "openai-openapi.json"
    document.write_text("{}")
    assert require_reference(document) == document


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("1", pytest.fail.Exception),
                                             ("", pytest.skip.Exception), ("false", pytest.skip.Exception)])
def test_a_missing_reference_fails_in_ci_and_skips_elsewhere(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]) -> None:
    # given no reference document, with CI set or not
    monkeypatch.setenv("CI", ci)
    # when / then
    with pytest.raises(outcome):
        require_reference(tmp_path / "missing.json")


def test_the_reference_directory_is_beside_the_repository() -> None:
    assert REFERENCE_DIR == ROOT.parent / "shared" / "reference"
