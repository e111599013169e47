"""Keep the OpenAPI document true: check a real response against what the document promises."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError, validators

JSON_TYPES = ("application/json", "application/problem+json")
REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def require_reference(path: Path) -> Path:
    """``path`` (a reference document kept beside the repository, such as OpenAI's OpenAPI document)
    when it exists. When it is missing the calling test skips on a workstation, but fails when the
    ``CI`` environment variable is set: in CI a missing reference is a broken checkout, not a reason
    to pass silently."""
    if path.is_file():
        return path
    message = f"the reference document {path} is missing; the conformance checks need it"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(message + " (CI is set, so this fails instead of skipping)")
    pytest.skip(message)


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) of the document."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _json_content(validator: Any, content_schema: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """``contentSchema`` asserted, not only annotated, for JSON text (an SSE event's ``data`` line)."""
    if schema.get("contentMediaType") != "application/json" or not isinstance(instance, str):
        return
    try:
        parsed = json.loads(instance)
    except ValueError:
        yield ValidationError(f"{instance[:80]!r} is not JSON text")
        return
    yield from validator.descend(parsed, content_schema)


_Validator = validators.extend(Draft202012Validator, {"contentSchema": _json_content})


def assert_matches_openapi(document: dict[str, Any], method: str, path_template: str, status: int,
                           json_body: Any, *, content_type: str | None = None) -> None:
    """Raise AssertionError unless the document declares ``status`` for ``method path_template`` and
    ``json_body`` (None: no body) validates against its schema (JSON Schema 2020-12, formats checked).

    ``path_template`` is the document's path key, e.g. ``/upload/{id}``.
    """
    operation = document.get("paths", {}).get(path_template, {}).get(method.lower())
    assert operation is not None, f"{method.upper()} {path_template} is not in the OpenAPI document"
    declared = operation["responses"].get(str(status))
    assert declared is not None, (f"{method.upper()} {path_template} does not declare status {status} "
                                  f"(declared: {sorted(operation['responses'])})")
    response = _resolve(document, declared)
    content = response.get("content", {})
    if json_body is None:
        assert not content, f"{method.upper()} {path_template} {status} promises a body, none was sent"
        return
    media = content_type or next((media for media in JSON_TYPES if media in content), None)
    assert media is not None and media in content, (
        f"{method.upper()} {path_template} {status} declares no JSON body (declared: {sorted(content)})")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "components": document.get("components", {}), **content[media]["schema"]}
    validator = _Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(json_body), key=lambda error: list(error.absolute_path))
    assert not errors, f"{method.upper()} {path_template} {status} does not match the document:\n" + "\n".join(
        f"  at /{'/'.join(str(p) for p in error.absolute_path)}: {error.message}" for error in errors)
