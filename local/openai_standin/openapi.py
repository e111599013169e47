"""Request bodies checked against OpenAI's published OpenAPI document, as OpenAI checks them.

When the document is available (``OPENAI_STANDIN_OPENAPI_DOCUMENT``, or ``openai-openapi.json`` in
``shared/reference`` beside the repository, as in tests and CI), every JSON request body is
validated against its operation's request schema before any route sees it; a violation is answered
as OpenAI answers it: 400 ``invalid_request_error`` naming the ``param`` with a ``code``. The
document is large: it is read once per process, on the first request, and the validator of each
schema is built once. Without the document the routes' own checks (:mod:`.validation`) still run.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from .errors import ApiError, invalid_request

ENV_DOCUMENT = "OPENAI_STANDIN_OPENAPI_DOCUMENT"
_SIBLING_DOCUMENT = Path(__file__).resolve().parents[3] / "shared" / "reference" / "openai-openapi.json"
_URI = "urn:openai:openapi"
# jsonschema's keyword -> the code OpenAI answers with.
_CODES = {
    "type": "invalid_type", "enum": "invalid_value", "const": "invalid_value", "anyOf": "invalid_value",
    "oneOf": "invalid_value", "maxLength": "string_above_max_length", "minLength": "empty_string",
    "minimum": "integer_below_min_value", "maximum": "integer_above_max_value",
    "required": "missing_required_parameter", "additionalProperties": "unknown_parameter",
    "maxItems": "array_above_max_length", "minItems": "array_below_min_length",
    "maxProperties": "object_above_max_properties",
}


def default_document() -> Path | None:
    """The document named by ``OPENAI_STANDIN_OPENAPI_DOCUMENT``, else the one beside the repository
    when it exists; None when there is none (the stand-in then runs its own checks only)."""
    named = os.environ.get(ENV_DOCUMENT)
    if named:
        return Path(named)
    return _SIBLING_DOCUMENT if _SIBLING_DOCUMENT.exists() else None


def _closest(error: Any) -> Any:
    """For a value that matches none of an anyOf's alternatives, the error of the alternative it
    came closest to (fewest errors): a filter with one unknown key is a comparison filter with an
    unknown key, not a compound filter of the wrong type."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[Any, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        fewest = min(branches.values(), key=len)
        if len(fewest) != 1:
            return error
        # Leave a set of "wrong JSON type" alternatives to the anyOf itself (invalid_type).
        if all(sub.validator == "type" and not sub.relative_path for sub in error.context):
            return error
        error = fewest[0]
    return error


def _param(path: list[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class RequestSchemas:
    """The request schemas of the document at ``path``, by method and path; thread-safe, lazy."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._operations: list[tuple[str, re.Pattern[str], str]] | None = None
        self._validators: dict[str, Any] = {}
        self._registry: Any = None

    def _load(self) -> list[tuple[str, re.Pattern[str], str]]:
        with self._lock:
            if self._operations is None:
                from referencing import Registry, Resource
                from referencing.jsonschema import DRAFT202012

                document = json.loads(self.path.read_text(encoding="utf-8"))
                self._registry = Registry().with_resource(
                    _URI, Resource.from_contents(document, default_specification=DRAFT202012))
                operations = []
                for template, methods in document["paths"].items():
                    pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
                    for method, operation in methods.items():
                        schema = (operation.get("requestBody", {}).get("content", {})
                                  .get("application/json", {}).get("schema", {}))
                        if "$ref" in schema:
                            operations.append((method.upper(), pattern, schema["$ref"]))
                self._operations = operations
            return self._operations

    def _validator(self, ref: str) -> Any:
        with self._lock:
            if ref not in self._validators:
                from jsonschema import Draft202012Validator, validators

                # The document's oneOf lists overlap (a message matches both EasyInputMessage and
                # Item), and OpenAI accepts any match: oneOf is read as anyOf.
                lenient = validators.extend(Draft202012Validator,
                                            {"oneOf": Draft202012Validator.VALIDATORS["anyOf"]})
                self._validators[ref] = lenient({"$ref": _URI + ref}, registry=self._registry)
            return self._validators[ref]

    def check(self, method: str, path: str, body: Any) -> None:
        """Raise a 400 ApiError when ``body`` violates the request schema of ``method path`` (the
        path after ``/v1``); operations without a JSON request schema pass."""
        ref = next((ref for m, pattern, ref in self._load() if m == method and pattern.match(path)), None)
        if ref is None:
            return
        from jsonschema.exceptions import relevance

        errors = list(self._validator(ref).iter_errors(body))
        if not errors:
            return
        raise self._as_api_error(_closest(max(errors, key=relevance)))

    @staticmethod
    def _as_api_error(error: Any) -> ApiError:
        path = list(error.absolute_path)
        code = _CODES.get(error.validator, "invalid_value")
        if error.validator in ("anyOf", "oneOf") and error.context and all(
                e.validator == "type" and not e.relative_path for e in error.context):
            code = "invalid_type"  # no alternative takes a value of this JSON type
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            unknown = sorted(set(error.instance) - allowed)
            if unknown:
                path.append(unknown[0])
                return invalid_request(f"Unknown parameter: '{_param(path)}'.", param=_param(path), code=code)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [name for name in error.validator_value if name not in error.instance]
            if missing:
                path.append(missing[0])
                return invalid_request(f"Missing required parameter: '{_param(path)}'.", param=_param(path),
                                       code=code)
        param = _param(path) or None
        return invalid_request(f"Invalid '{param}': {error.message[:300]}", param=param, code=code)
