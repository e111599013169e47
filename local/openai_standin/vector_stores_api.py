"""``/v1/vector_stores``: stores, their files (attach, status, attributes, detach) and direct search."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from .errors import invalid_request, not_found
from .ingest import (attach_file, file_status, get_vector_store, remaining_seconds, render_vector_store,
                     render_vs_file, searchable_chunks, text_of, touch)
from .listing import paginate, parse_list_params
from .search import chunk_text, rank
from .state import State, new_id
from .validation import (require_int, require_known_keys, require_object, require_string, validate_attributes,
                         validate_chunking_strategy, validate_filter, validate_metadata)
from .web import json_body, services

blueprint = Blueprint("vector_stores", __name__, url_prefix="/v1")

FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")
MAX_FILE_IDS_ON_CREATE = 500


@blueprint.post("/vector_stores")
def create_vector_store() -> Response:
    body = json_body()
    require_known_keys(body, {"name", "description", "metadata", "expires_after", "file_ids", "chunking_strategy"})
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise invalid_request("Invalid type for 'name': expected a string.", param="name", code="invalid_type")
    metadata = validate_metadata(body.get("metadata"))
    expires_after = _expires_after(body.get("expires_after"))
    file_ids = _file_ids(body.get("file_ids"))
    strategy = validate_chunking_strategy(body.get("chunking_strategy"))
    state, faults = services().state, services().faults
    with state.changing():
        for file_id in file_ids:
            if file_id not in state.files:
                raise not_found(f"No file found with id '{file_id}'.", param="file_ids")
        vector_store_id = new_id("vs")
        now = state.now()
        state.vector_stores[vector_store_id] = {
            "id": vector_store_id, "seq": state.next_seq(f"vs:{vector_store_id}"), "created_at": now,
            "name": name or "",
            "metadata": metadata, "expires_after": expires_after, "last_active_at": now,
        }
        state.vs_files[vector_store_id] = {}
    for file_id in file_ids:
        attach_file(state, faults, vector_store_id, file_id, attributes={}, chunking_strategy=strategy)
    with state.reading():
        return jsonify(render_vector_store(state, state.vector_stores[vector_store_id]))


@blueprint.get("/vector_stores")
def list_vector_stores() -> Response:
    params = parse_list_params(request.args, default_limit=20, max_limit=100)
    state = services().state
    with state.reading():
        return jsonify(paginate(list(state.vector_stores.values()), params, cursor_seq=state.cursor_seq("vs"),
                                render=lambda record: render_vector_store(state, record)))


@blueprint.get("/vector_stores/<vector_store_id>")
def retrieve_vector_store(vector_store_id: str) -> Response:
    state = services().state
    with state.reading():
        return jsonify(render_vector_store(state, get_vector_store(state, vector_store_id)))


@blueprint.post("/vector_stores/<vector_store_id>")
def update_vector_store(vector_store_id: str) -> Response:
    body = json_body()
    require_known_keys(body, {"name", "metadata", "expires_after"})
    state = services().state
    with state.changing():
        record = get_vector_store(state, vector_store_id)
        if "name" in body and body["name"] is not None:
            record["name"] = require_string(body["name"], "name")
        if "metadata" in body:
            record["metadata"] = validate_metadata(body["metadata"])
        if "expires_after" in body:
            record["expires_after"] = _expires_after(body["expires_after"])
        return jsonify(render_vector_store(state, record))


@blueprint.delete("/vector_stores/<vector_store_id>")
def delete_vector_store(vector_store_id: str) -> Response:
    state = services().state
    with state.changing():
        get_vector_store(state, vector_store_id)
        del state.vector_stores[vector_store_id]
        state.vs_files.pop(vector_store_id, None)
    return jsonify({"id": vector_store_id, "object": "vector_store.deleted", "deleted": True})


@blueprint.post("/vector_stores/<vector_store_id>/files")
def create_vector_store_file(vector_store_id: str) -> Response:
    body = json_body()
    require_known_keys(body, {"file_id", "attributes", "chunking_strategy"})
    file_id = require_string(body.get("file_id"), "file_id")
    attributes = validate_attributes(body.get("attributes"))
    strategy = validate_chunking_strategy(body.get("chunking_strategy"))
    state = services().state
    record, attached_now = attach_file(state, services().faults, vector_store_id, file_id, attributes=attributes,
                                       chunking_strategy=strategy)
    with state.reading():
        payload = render_vs_file(state, record)
        remaining = remaining_seconds(state, record)
    if attached_now:
        # A freshly attached file always reads as in_progress first, as with OpenAI.
        payload.update(status="in_progress", usage_bytes=0, last_error=None)
    return _with_poll_hint(jsonify(payload), remaining)


@blueprint.get("/vector_stores/<vector_store_id>/files")
def list_vector_store_files(vector_store_id: str) -> Response:
    params = parse_list_params(request.args, default_limit=20, max_limit=100)
    wanted = request.args.get("filter")
    if wanted is not None and wanted not in FILE_STATUSES:
        raise invalid_request(f"Invalid value for 'filter': expected one of {', '.join(FILE_STATUSES)}.",
                              param="filter", code="invalid_value")
    state = services().state
    with state.reading():
        get_vector_store(state, vector_store_id)
        records = [r for r in state.vs_files.get(vector_store_id, {}).values()
                   if wanted is None or file_status(state, r) == wanted]
        return jsonify(paginate(records, params, cursor_seq=state.cursor_seq(f"vsf:{vector_store_id}"),
                                render=lambda record: render_vs_file(state, record)))


@blueprint.get("/vector_stores/<vector_store_id>/files/<file_id>")
def retrieve_vector_store_file(vector_store_id: str, file_id: str) -> Response:
    state = services().state
    with state.reading():
        record = _get_vs_file(state, vector_store_id, file_id)
        return _with_poll_hint(jsonify(render_vs_file(state, record)), remaining_seconds(state, record))


@blueprint.post("/vector_stores/<vector_store_id>/files/<file_id>")
def update_vector_store_file(vector_store_id: str, file_id: str) -> Response:
    body = json_body()
    require_known_keys(body, {"attributes"})
    if "attributes" not in body:
        raise invalid_request("Missing required parameter: 'attributes'.", param="attributes",
                              code="missing_required_parameter")
    attributes = validate_attributes(body["attributes"])
    state = services().state
    with state.changing():
        record = _get_vs_file(state, vector_store_id, file_id)
        record["attributes"] = attributes
        return jsonify(render_vs_file(state, record))


@blueprint.delete("/vector_stores/<vector_store_id>/files/<file_id>")
def delete_vector_store_file(vector_store_id: str, file_id: str) -> Response:
    state = services().state
    with state.changing():
        _get_vs_file(state, vector_store_id, file_id)
        del state.vs_files[vector_store_id][file_id]
    return jsonify({"id": file_id, "object": "vector_store.file.deleted", "deleted": True})


@blueprint.get("/vector_stores/<vector_store_id>/files/<file_id>/content")
def vector_store_file_content(vector_store_id: str, file_id: str) -> Response:
    state = services().state
    with state.reading():
        record = _get_vs_file(state, vector_store_id, file_id)
        text = (text_of(state, file_id) or "") if file_status(state, record) == "completed" else ""
        strategy = record["chunking_strategy"]["static"]
        passages = chunk_text(text, strategy["max_chunk_size_tokens"], strategy["chunk_overlap_tokens"])
    return jsonify({"object": "vector_store.file_content.page", "data": [{"type": "text", "text": p} for p in passages],
                    "has_more": False, "next_page": None})


@blueprint.post("/vector_stores/<vector_store_id>/search")
def search_vector_store(vector_store_id: str) -> Response:
    body = json_body()
    require_known_keys(body, {"query", "filters", "max_num_results", "ranking_options", "rewrite_query"})
    query = body.get("query")
    queries = ([require_string(item, f"query[{index}]") for index, item in enumerate(query)]
               if isinstance(query, list) else [require_string(query, "query")])
    filters = validate_filter(body["filters"]) if body.get("filters") is not None else None
    max_results = require_int(body.get("max_num_results", 10), "max_num_results", minimum=1, maximum=50)
    threshold = _score_threshold(body.get("ranking_options"))
    state = services().state
    with state.reading():
        get_vector_store(state, vector_store_id)
    hits = rank(searchable_chunks(state, [vector_store_id], filters), " ".join(queries),
                max_results=max_results, score_threshold=threshold)
    touch(state, [vector_store_id])
    data = [{"file_id": hit.chunk.file_id, "filename": hit.chunk.filename, "score": hit.score,
             "attributes": dict(hit.chunk.attributes), "content": [{"type": "text", "text": hit.chunk.text}]}
            for hit in hits]
    return jsonify({"object": "vector_store.search_results.page", "search_query": queries, "data": data,
                    "has_more": False, "next_page": None})


def _get_vs_file(state: State, vector_store_id: str, file_id: str) -> dict[str, Any]:
    get_vector_store(state, vector_store_id)
    record = state.vs_files.get(vector_store_id, {}).get(file_id)
    if record is None:
        raise not_found(f"No file found with id '{file_id}' in vector store '{vector_store_id}'.", param="file_id")
    return record


def _with_poll_hint(response: Response, remaining: float) -> Response:
    """Tell the SDK's poll helpers when to look again (``openai-poll-after-ms``), as OpenAI does."""
    response.headers["openai-poll-after-ms"] = str(max(10, min(1000, int(remaining * 1000) + 10)))
    return response


def _expires_after(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    node = require_object(value, "expires_after")
    require_known_keys(node, {"anchor", "days"}, "expires_after")
    if node.get("anchor") != "last_active_at":
        raise invalid_request("Invalid value for 'expires_after.anchor': expected 'last_active_at'.",
                              param="expires_after.anchor", code="invalid_value")
    days = require_int(node.get("days"), "expires_after.days", minimum=1, maximum=365)
    return {"anchor": "last_active_at", "days": days}


def _file_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_request("Invalid type for 'file_ids': expected an array of strings.", param="file_ids",
                              code="invalid_type")
    if len(value) > MAX_FILE_IDS_ON_CREATE:
        raise invalid_request(f"Invalid 'file_ids': array too long. Expected an array with maximum length "
                              f"{MAX_FILE_IDS_ON_CREATE}, but got an array with length {len(value)} instead.",
                              param="file_ids", code="array_above_max_length")
    return [require_string(item, f"file_ids[{index}]") for index, item in enumerate(value)]


def _score_threshold(value: Any) -> float:
    if value is None:
        return 0.0
    threshold = require_object(value, "ranking_options").get("score_threshold", 0.0)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise invalid_request("Invalid 'ranking_options.score_threshold': expected a number between 0 and 1.",
                              param="ranking_options.score_threshold", code="invalid_value")
    return float(threshold)
