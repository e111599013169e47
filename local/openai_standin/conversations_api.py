"""``/v1/conversations``: conversations and their items (newest first by default, as OpenAI lists them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .errors import invalid_request, not_found
from .items import MAX_ITEMS_PER_CALL, normalise_input, render_item
from .listing import envelope, paginate, parse_list_params
from .state import State, new_id
from .validation import validate_metadata
from .web import json_body, query_list, services

blueprint = Blueprint("conversations", __name__, url_prefix="/v1")


def render_conversation(record: dict[str, Any]) -> dict[str, Any]:
    """A conversation record as OpenAI's ``Conversation``."""
    return {"id": record["id"], "object": "conversation", "created_at": record["created_at"],
            "metadata": dict(record["metadata"])}


def get_conversation(state: State, conversation_id: str) -> dict[str, Any]:
    """The record of ``conversation_id``; 404 when there is none."""
    record = state.conversations.get(conversation_id)
    if record is None:
        raise not_found(f"Conversation with id '{conversation_id}' not found.", param="conversation_id")
    return record


def append_items(state: State, conversation_id: str, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append ``items`` to the conversation (caller holds :meth:`State.changing`); the stored items."""
    stored = []
    for item in items:
        record = dict(item, seq=state.next_seq(f"item:{conversation_id}:{item['id']}"))
        state.items.setdefault(conversation_id, []).append(record)
        stored.append(record)
    return stored


@blueprint.post("/conversations")
def create_conversation() -> Response:
    body = json_body()
    metadata = validate_metadata(body.get("metadata"))
    items = _bounded_items(body.get("items"))
    state = services().state
    with state.changing():
        conversation_id = new_id("conv")
        record = {"id": conversation_id, "seq": state.next_seq(f"conv:{conversation_id}"),
                  "created_at": state.now(), "metadata": metadata}
        state.conversations[conversation_id] = record
        state.items[conversation_id] = []
        append_items(state, conversation_id, items)
    return jsonify(render_conversation(record))


@blueprint.get("/conversations/<conversation_id>")
def retrieve_conversation(conversation_id: str) -> Response:
    state = services().state
    with state.reading():
        return jsonify(render_conversation(get_conversation(state, conversation_id)))


@blueprint.post("/conversations/<conversation_id>")
def update_conversation(conversation_id: str) -> Response:
    body = json_body()
    if "metadata" not in body:
        raise invalid_request("Missing required parameter: 'metadata'.", param="metadata",
                              code="missing_required_parameter")
    metadata = validate_metadata(body["metadata"])
    state = services().state
    with state.changing():
        record = get_conversation(state, conversation_id)
        record["metadata"] = metadata
        return jsonify(render_conversation(record))


@blueprint.delete("/conversations/<conversation_id>")
def delete_conversation(conversation_id: str) -> Response:
    state = services().state
    with state.changing():
        get_conversation(state, conversation_id)
        del state.conversations[conversation_id]
        # OpenAI keeps the items of a deleted conversation, but nothing can reach them any more.
        state.items.pop(conversation_id, None)
    return jsonify({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


@blueprint.get("/conversations/<conversation_id>/items")
def list_items(conversation_id: str) -> Response:
    params = parse_list_params(request.args, default_limit=20, max_limit=100)
    include = query_list("include")
    state = services().state
    with state.reading():
        get_conversation(state, conversation_id)
        return jsonify(paginate(state.items.get(conversation_id, []), params,
                                cursor_seq=state.cursor_seq(f"item:{conversation_id}"),
                                render=lambda item: render_item(item, include)))


@blueprint.post("/conversations/<conversation_id>/items")
def create_items(conversation_id: str) -> Response:
    body = json_body()
    if "items" not in body:
        raise invalid_request("Missing required parameter: 'items'.", param="items", code="missing_required_parameter")
    items = _bounded_items(body["items"])
    include = query_list("include")
    state = services().state
    with state.changing():
        get_conversation(state, conversation_id)
        stored = append_items(state, conversation_id, items)
    return jsonify(envelope([render_item(item, include) for item in stored], has_more=False))


@blueprint.get("/conversations/<conversation_id>/items/<item_id>")
def retrieve_item(conversation_id: str, item_id: str) -> Response:
    state = services().state
    with state.reading():
        return jsonify(render_item(_get_item(state, conversation_id, item_id), query_list("include")))


@blueprint.delete("/conversations/<conversation_id>/items/<item_id>")
def delete_item(conversation_id: str, item_id: str) -> Response:
    state = services().state
    with state.changing():
        item = _get_item(state, conversation_id, item_id)
        state.items[conversation_id].remove(item)
        return jsonify(render_conversation(get_conversation(state, conversation_id)))


def _get_item(state: State, conversation_id: str, item_id: str) -> dict[str, Any]:
    get_conversation(state, conversation_id)
    for item in state.items.get(conversation_id, []):
        if item["id"] == item_id:
            return item
    raise not_found(f"Item with id '{item_id}' not found.", param="item_id")


def _bounded_items(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_request("Invalid type for 'items': expected an array of items.", param="items",
                              code="invalid_type")
    items = normalise_input(value, "items")
    if len(items) > MAX_ITEMS_PER_CALL:
        raise invalid_request(f"Invalid 'items': array too long. Expected an array with maximum length "
                              f"{MAX_ITEMS_PER_CALL}, but got an array with length {len(items)} instead.",
                              param="items", code="array_above_max_length")
    return items
