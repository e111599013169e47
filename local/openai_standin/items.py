"""Conversation items: normalising input messages and reading their text.

The Responses ``input`` and the Conversations ``items`` accept the same message shapes: a string,
``{"role", "content"}`` with string content, or ``{"type": "message", "role", "content": [parts]}``.
They are stored as OpenAI returns them: ``{"id": "msg_...", "type": "message", "role", "status",
"content": [{"type": "input_text" | "output_text", ...}]}``. Items other than text messages
(images, files, function calls) are outside what the project uses and are refused with a 400.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import invalid_request
from .state import new_id

ROLES = frozenset({"user", "assistant", "system", "developer"})
MAX_ITEMS_PER_CALL = 20


def normalise_input(value: Any, param: str) -> list[dict[str, Any]]:
    """``value`` (a string or a list of message items) as stored message items with fresh ids."""
    if value is None:
        return []
    if isinstance(value, str):
        return [message("user", value)]
    if not isinstance(value, list):
        raise invalid_request(f"Invalid type for '{param}': expected a string or an array of input items.",
                              param=param, code="invalid_type")
    return [_normalise_item(item, f"{param}[{index}]") for index, item in enumerate(value)]


def message(role: str, text: str) -> dict[str, Any]:
    """A stored message item holding ``text``."""
    return {"id": new_id("msg"), "type": "message", "role": role, "status": "completed",
            "content": [_text_part(role, text)]}


def item_text(item: Mapping[str, Any]) -> str:
    """All the text an item carries (message parts, search queries and results)."""
    if item.get("type") == "file_search_call":
        results = item.get("results") or []
        return " ".join(list(item.get("queries") or []) + [r.get("text") or "" for r in results])
    return " ".join(part.get("text") or "" for part in item.get("content") or [] if isinstance(part, Mapping))


def last_user_text(items: Iterable[Mapping[str, Any]]) -> str:
    """The text of the last user message among ``items`` ("" when there is none)."""
    texts = [item_text(item) for item in items if item.get("type") == "message" and item.get("role") == "user"]
    return texts[-1] if texts else ""


def render_item(item: Mapping[str, Any], include: Iterable[str] = ()) -> dict[str, Any]:
    """A stored item as returned by the API (search results only when included)."""
    rendered = {key: value for key, value in item.items() if key != "seq"}
    if rendered.get("type") == "file_search_call" and "file_search_call.results" not in set(include):
        rendered["results"] = None
    return rendered


def _normalise_item(item: Any, param: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise invalid_request(f"Invalid type for '{param}': expected an object.", param=param, code="invalid_type")
    kind = item.get("type", "message")
    if kind != "message":
        raise invalid_request(f"Invalid value for '{param}.type': the local stand-in accepts only message items, "
                              f"got '{kind}'.", param=f"{param}.type", code="invalid_value")
    role = item.get("role")
    if role not in ROLES:
        raise invalid_request(f"Invalid value for '{param}.role': expected one of {', '.join(sorted(ROLES))}.",
                              param=f"{param}.role", code="invalid_value")
    content = item.get("content")
    if isinstance(content, str):
        return message(role, content)
    if not isinstance(content, list):
        raise invalid_request(f"Invalid type for '{param}.content': expected a string or an array of content parts.",
                              param=f"{param}.content", code="invalid_type")
    parts = []
    for index, part in enumerate(content):
        part_param = f"{param}.content[{index}]"
        if not isinstance(part, Mapping) or part.get("type") not in ("input_text", "output_text", "text"):
            raise invalid_request(f"Invalid '{part_param}': the local stand-in accepts only text content parts.",
                                  param=part_param, code="invalid_value")
        if not isinstance(part.get("text"), str):
            raise invalid_request(f"Invalid type for '{part_param}.text': expected a string.",
                                  param=f"{part_param}.text", code="invalid_type")
        parts.append(_text_part(role, part["text"]))
    stored = message(role, "")
    stored["content"] = parts
    return stored


def _text_part(role: str, text: str) -> dict[str, Any]:
    if role == "assistant":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": "input_text", "text": text}
