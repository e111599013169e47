"""``/v1/responses``: create (plain or streamed), retrieve, delete, and list a response's input items.

A turn with a ``file_search`` tool ranks the passages of the ``completed`` files of the named vector
stores (at most two, as the real API enforces) that pass the tool's filters; with a
``conversation``, the conversation's earlier items are the turn's context and the new input and
output items are appended to it.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .conversations_api import append_items, get_conversation
from .errors import invalid_request, not_found
from .ingest import get_vector_store, searchable_chunks, touch
from .items import item_text, last_user_text, normalise_input
from .listing import paginate, parse_list_params
from .responses import SearchRequest, Turn, build_response, prefix_tokens, stream_events
from .search import estimate_tokens, rank
from .state import State, new_id
from .validation import require_int, require_object, require_string, validate_filter, validate_metadata
from .web import json_body, services

blueprint = Blueprint("responses", __name__, url_prefix="/v1")

MAX_VECTOR_STORES = 2
DEFAULT_MAX_NUM_RESULTS = 10
RANKERS = frozenset({"auto", "default-2024-11-15"})
INCLUDABLE = frozenset({
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
    "reasoning.encrypted_content", "message.output_text.logprobs",
})
# Parameters of responses.create: the ones the stand-in acts on, and the ones it accepts and ignores.
_USED = frozenset({"model", "input", "instructions", "conversation", "previous_response_id", "tools", "include",
                   "max_output_tokens", "max_tool_calls", "metadata", "safety_identifier", "store", "stream",
                   "reasoning", "truncation", "tool_choice", "service_tier", "text", "stream_options"})
_ECHOED: dict[str, type | tuple[type, ...]] = {
    "temperature": (int, float), "top_p": (int, float), "prompt_cache_key": str, "user": str,
    "parallel_tool_calls": bool,
}
_IGNORED = frozenset({"access_programs", "background", "background_options", "context_management", "image",
                      "moderation", "prompt", "prompt_cache_options", "prompt_cache_retention", "top_logprobs"})
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
TRUNCATIONS = ("auto", "disabled")
TOOL_CHOICES = ("none", "auto", "required")
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority", "fast", "ultrafast")
TEXT_FORMATS = ("text", "json_object", "json_schema")
MAX_SAFETY_IDENTIFIER = 64
EFFORTS_REFUSED_BY_MODEL = {"gpt-6.1-sol": ("none", "minimal")}  # per the models' pages


@blueprint.post("/responses")
def create_response() -> Response:
    body = json_body()
    unknown = sorted(set(body) - _USED - _IGNORED - set(_ECHOED))
    if unknown:
        raise invalid_request(f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter")
    state = services().state
    turn = _parse_turn(state, body)
    hits = None
    if turn.search is not None and turn.max_tool_calls != 0:
        chunks = searchable_chunks(state, turn.search.vector_store_ids, turn.search.filters)
        hits = rank(chunks, turn.question, max_results=turn.search.max_num_results,
                    score_threshold=turn.search.score_threshold)
        touch(state, turn.search.vector_store_ids)
    response_id = new_id("resp")
    payload = build_response(turn, hits, response_id=response_id, created_at=state.now())
    with state.changing():
        if turn.conversation_id is not None:
            get_conversation(state, turn.conversation_id)
            append_items(state, turn.conversation_id, turn.input_items + payload["output"])
        if turn.store:
            state.responses[response_id] = {
                "seq": state.next_seq(f"resp:{response_id}"), "payload": payload,
                "prefix_tokens": prefix_tokens(turn, payload),
                "input_items": [dict(item, seq=state.next_seq(f"input:{response_id}:{item['id']}"))
                                for item in turn.input_items],
            }
    if body.get("stream"):
        return Response(stream_events(payload, obfuscation=turn.obfuscation), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache"})
    return jsonify(payload)


@blueprint.get("/responses/<response_id>")
def retrieve_response(response_id: str) -> Response:
    if request.args.get("stream") in ("true", "True", "1"):
        raise invalid_request("The local stand-in does not replay stored responses as streams.", param="stream")
    state = services().state
    with state.reading():
        return jsonify(_get_stored(state, response_id)["payload"])


@blueprint.delete("/responses/<response_id>")
def delete_response(response_id: str) -> Response:
    state = services().state
    with state.changing():
        _get_stored(state, response_id)
        del state.responses[response_id]
    return jsonify({"id": response_id, "object": "response", "deleted": True})


@blueprint.get("/responses/<response_id>/input_items")
def list_input_items(response_id: str) -> Response:
    params = parse_list_params(request.args, default_limit=20, max_limit=100)
    state = services().state
    with state.reading():
        stored = _get_stored(state, response_id)
        return jsonify(paginate(stored["input_items"], params, cursor_seq=state.cursor_seq(f"input:{response_id}"),
                                render=lambda item: {k: v for k, v in item.items() if k != "seq"}))


def _get_stored(state: State, response_id: str) -> dict[str, Any]:
    stored = state.responses.get(response_id)
    if stored is None:
        raise not_found(f"Response with id '{response_id}' not found.", param="response_id")
    return stored


def _parse_turn(state: State, body: dict[str, Any]) -> Turn:
    """Validate the create parameters and gather the turn's context; 400/404 ApiError otherwise."""
    if "model" not in body:
        raise invalid_request("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    model = require_string(body["model"], "model")
    conversation_id = _conversation_id(body.get("conversation"))
    previous_id = body.get("previous_response_id")
    if previous_id is not None:
        previous_id = require_string(previous_id, "previous_response_id")
    if conversation_id is not None and previous_id is not None:
        raise invalid_request("Mutually exclusive parameters: Ensure you are only providing one of: "
                              "'previous_response_id' or 'conversation'.", param="conversation",
                              code="mutually_exclusive_parameters")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_request("The local stand-in accepts 'instructions' only as a string.", param="instructions",
                              code="invalid_type")
    input_items = normalise_input(body.get("input"), "input")
    include = body.get("include") or []
    if not isinstance(include, list) or any(value not in INCLUDABLE for value in include):
        raise invalid_request(f"Invalid value for 'include': expected values among {', '.join(sorted(INCLUDABLE))}.",
                              param="include", code="invalid_value")
    turn = Turn(model=model, question="", input_items=input_items, instructions=instructions,
                search=_search_tool(body.get("tools")), include_results="file_search_call.results" in include,
                metadata=validate_metadata(body.get("metadata")), conversation_id=conversation_id,
                previous_response_id=previous_id, store=_flag(body, "store", default=True))
    if body.get("max_output_tokens") is not None:
        turn.max_output_tokens = require_int(body["max_output_tokens"], "max_output_tokens", minimum=16)
    if body.get("max_tool_calls") is not None:
        turn.max_tool_calls = require_int(body["max_tool_calls"], "max_tool_calls", minimum=0)
    if body.get("safety_identifier") is not None:
        turn.safety_identifier = require_string(body["safety_identifier"], "safety_identifier",
                                                max_chars=MAX_SAFETY_IDENTIFIER)
    _model_options(turn, body, state)
    _flag(body, "stream", default=False)
    for key, kind in _ECHOED.items():
        if body.get(key) is not None:
            if not isinstance(body[key], kind) or (kind is not bool and isinstance(body[key], bool)):
                raise invalid_request(f"Invalid type for '{key}'.", param=key, code="invalid_type")
            turn.echo[key] = body[key]
    context: list[dict[str, Any]] = []
    with state.reading():
        if conversation_id is not None:
            get_conversation(state, conversation_id)
            context = list(state.items.get(conversation_id, []))
            turn.context_tokens = sum(estimate_tokens(item_text(item)) for item in context)
        elif previous_id is not None:
            previous = state.responses.get(previous_id)
            if previous is None:
                raise not_found(f"Previous response with id '{previous_id}' not found.", param="previous_response_id")
            turn.context_tokens = previous["prefix_tokens"]
        if turn.search is not None:
            for vector_store_id in turn.search.vector_store_ids:
                get_vector_store(state, vector_store_id)
    turn.question = last_user_text(input_items) or last_user_text(context)
    return turn


def _one_of(value: Any, allowed: tuple[str, ...], param: str) -> str:
    if value not in allowed:
        raise invalid_request(f"Invalid value: {json.dumps(value)[:40]}. Supported values are: "
                              f"{', '.join(repr(a) for a in allowed)}.", param=param, code="invalid_value")
    return str(value)


def _model_options(turn: Turn, body: dict[str, Any], state: State) -> None:
    """reasoning, truncation, tool_choice, service_tier, text and stream_options, checked as OpenAI does."""
    if body.get("reasoning") is not None:
        reasoning = require_object(body["reasoning"], "reasoning")
        unknown = sorted(set(reasoning) - {"effort", "summary", "generate_summary"})
        if unknown:
            raise invalid_request(f"Unknown parameter: 'reasoning.{unknown[0]}'.", param=f"reasoning.{unknown[0]}",
                                  code="unknown_parameter")
        if reasoning.get("effort") is not None:
            turn.reasoning_effort = _one_of(reasoning["effort"], REASONING_EFFORTS, "reasoning.effort")
            if turn.reasoning_effort in EFFORTS_REFUSED_BY_MODEL.get(turn.model, ()):
                raise invalid_request(f"Unsupported value: 'reasoning.effort' does not support "
                                      f"'{turn.reasoning_effort}' with this model.", param="reasoning.effort",
                                      code="unsupported_value")
    turn.reasoning_effort = turn.reasoning_effort or "medium"
    turn.reasoning_share = state.reasoning_share
    if body.get("truncation") is not None:
        turn.truncation = _one_of(body["truncation"], TRUNCATIONS, "truncation")
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") != "file_search" or set(choice) != {"type"}:
            raise invalid_request("Invalid value for 'tool_choice': the local stand-in supports only "
                                  "{'type': 'file_search'} as a tool choice object.", param="tool_choice",
                                  code="invalid_value")
    elif choice is not None:
        _one_of(choice, TOOL_CHOICES, "tool_choice")
    if body.get("service_tier") is not None:
        _one_of(body["service_tier"], SERVICE_TIERS, "service_tier")
    if body.get("text") is not None:
        text = require_object(body["text"], "text")
        if text.get("format") is not None:
            _one_of(require_object(text["format"], "text.format").get("type"), TEXT_FORMATS, "text.format.type")
        if text.get("verbosity") is not None:
            _one_of(text["verbosity"], ("low", "medium", "high"), "text.verbosity")
    if body.get("stream_options") is not None:
        options = require_object(body["stream_options"], "stream_options")
        if options.get("include_obfuscation") is not None:
            if not isinstance(options["include_obfuscation"], bool):
                raise invalid_request("Invalid type for 'stream_options.include_obfuscation': expected a boolean.",
                                      param="stream_options.include_obfuscation", code="invalid_type")
            turn.obfuscation = options["include_obfuscation"]


def _search_tool(value: Any) -> SearchRequest | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid_request("Invalid type for 'tools': expected an array of tools.", param="tools",
                              code="invalid_type")
    found: SearchRequest | None = None
    for index, raw in enumerate(value):
        param = f"tools[{index}]"
        tool = require_object(raw, param)
        if tool.get("type") != "file_search":
            raise invalid_request(f"Invalid value for '{param}.type': the local stand-in supports only the "
                                  f"file_search tool.", param=f"{param}.type", code="invalid_value")
        if found is not None:
            raise invalid_request("Only one file_search tool may be given.", param=param, code="invalid_value")
        found = _file_search(tool, param)
    return found


def _file_search(tool: dict[str, Any], param: str) -> SearchRequest:
    ids = tool.get("vector_store_ids")
    if not isinstance(ids, list) or not ids:
        raise invalid_request(f"Invalid '{param}.vector_store_ids': expected a non-empty array of vector store ids.",
                              param=f"{param}.vector_store_ids", code="invalid_value")
    if len(ids) > MAX_VECTOR_STORES:
        raise invalid_request(f"Invalid '{param}.vector_store_ids': maximum of {MAX_VECTOR_STORES} vector stores "
                              f"allowed.", param=f"{param}.vector_store_ids", code="array_above_max_length")
    ids = [require_string(v, f"{param}.vector_store_ids[{i}]") for i, v in enumerate(ids)]
    filters = validate_filter(tool["filters"], f"{param}.filters") if tool.get("filters") is not None else None
    max_results = require_int(tool.get("max_num_results", DEFAULT_MAX_NUM_RESULTS), f"{param}.max_num_results",
                              minimum=1, maximum=50)
    ranking = require_object(tool.get("ranking_options") or {}, f"{param}.ranking_options")
    ranker = ranking.get("ranker", "auto")
    if ranker not in RANKERS:
        raise invalid_request(f"Invalid value for '{param}.ranking_options.ranker': expected one of "
                              f"{', '.join(sorted(RANKERS))}.", param=f"{param}.ranking_options.ranker",
                              code="invalid_value")
    threshold = ranking.get("score_threshold", 0.0)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise invalid_request(f"Invalid '{param}.ranking_options.score_threshold': expected a number between 0 and 1.",
                              param=f"{param}.ranking_options.score_threshold", code="invalid_value")
    echo = {"type": "file_search", "vector_store_ids": ids, "filters": filters, "max_num_results": max_results,
            "ranking_options": {"ranker": ranker, "score_threshold": float(threshold)}}
    return SearchRequest(ids, filters, max_results, float(threshold), echo)


def _conversation_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return require_string(value.get("id"), "conversation.id")
    return require_string(value, "conversation")


def _flag(body: dict[str, Any], key: str, *, default: bool) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_request(f"Invalid type for '{key}': expected a boolean.", param=key, code="invalid_type")
    return value
