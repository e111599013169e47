"""Validation of request parameters, with the limits and error codes of the real API.

The stand-in is only useful if it refuses what OpenAI refuses: a caller that passes 17 attributes,
a metadata value of 600 characters or an ``in`` filter without a list must see the same 400 here
that it would see in production, not a silent success.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid_request

MAX_PAIRS = 16
MAX_KEY_CHARS = 64
MAX_STRING_VALUE_CHARS = 512
COMPARISON_OPERATORS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"})
COMPOUND_OPERATORS = frozenset({"and", "or"})


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_object(value: object, param: str) -> dict[str, Any]:
    """``value`` as a JSON object, or a 400 naming ``param``."""
    if not isinstance(value, dict):
        raise invalid_request(f"Invalid type for '{param}': expected an object, but got {_json_type(value)} instead.",
                              param=param, code="invalid_type")
    return value


def require_string(value: object, param: str, *, max_chars: int | None = None) -> str:
    """``value`` as a non-empty string (at most ``max_chars``), or a 400 naming ``param``."""
    if not isinstance(value, str):
        raise invalid_request(f"Invalid type for '{param}': expected a string, but got {_json_type(value)} instead.",
                              param=param, code="invalid_type")
    if not value:
        raise invalid_request(f"Invalid '{param}': empty string. Expected a string with minimum length 1.",
                              param=param, code="empty_string")
    if max_chars is not None and len(value) > max_chars:
        raise invalid_request(f"Invalid '{param}': string too long. Expected a string with maximum length "
                              f"{max_chars}, but got a string with length {len(value)} instead.",
                              param=param, code="string_above_max_length")
    return value


def require_int(value: object, param: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an integer within bounds, or a 400 naming ``param``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_request(f"Invalid type for '{param}': expected an integer, but got {_json_type(value)} instead.",
                              param=param, code="invalid_type")
    if minimum is not None and value < minimum:
        raise invalid_request(f"Invalid '{param}': integer below minimum value. Expected a value >= {minimum}, "
                              f"but got {value} instead.", param=param, code="integer_below_min_value")
    if maximum is not None and value > maximum:
        raise invalid_request(f"Invalid '{param}': integer above maximum value. Expected a value <= {maximum}, "
                              f"but got {value} instead.", param=param, code="integer_above_max_value")
    return value


def require_known_keys(node: dict[str, Any], allowed: set[str] | frozenset[str], param: str | None = None) -> None:
    """A 400 ``unknown_parameter`` for the first key of ``node`` outside ``allowed``."""
    unknown = sorted(set(node) - set(allowed))
    if unknown:
        name = f"{param}.{unknown[0]}" if param else unknown[0]
        raise invalid_request(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


def validate_metadata(value: object, param: str = "metadata") -> dict[str, str]:
    """Metadata: at most 16 string pairs, keys up to 64 and values up to 512 characters."""
    if value is None:
        return {}
    pairs = require_object(value, param)
    if len(pairs) > MAX_PAIRS:
        raise invalid_request(f"Invalid '{param}': too many properties. Expected an object with at most "
                              f"{MAX_PAIRS} properties, but got {len(pairs)} instead.",
                              param=param, code="object_above_max_properties")
    for key, item in pairs.items():
        _check_key(key, param)
        if not isinstance(item, str):
            raise invalid_request(f"Invalid type for '{param}.{key}': expected a string, but got "
                                  f"{_json_type(item)} instead.", param=f"{param}.{key}", code="invalid_type")
        _check_string_value(item, f"{param}.{key}")
    return dict(pairs)


def validate_attributes(value: object, param: str = "attributes") -> dict[str, str | int | float | bool]:
    """Vector-store-file attributes: like metadata, but values may also be numbers or booleans."""
    if value is None:
        return {}
    pairs = require_object(value, param)
    if len(pairs) > MAX_PAIRS:
        raise invalid_request(f"Invalid '{param}': too many properties. Expected an object with at most "
                              f"{MAX_PAIRS} properties, but got {len(pairs)} instead.",
                              param=param, code="object_above_max_properties")
    for key, item in pairs.items():
        _check_key(key, param)
        if isinstance(item, str):
            _check_string_value(item, f"{param}.{key}")
        elif not (isinstance(item, bool) or _is_number(item)):
            raise invalid_request(f"Invalid type for '{param}.{key}': expected one of string, number or boolean, "
                                  f"but got {_json_type(item)} instead.", param=f"{param}.{key}", code="invalid_type")
    return dict(pairs)


def validate_filter(value: object, param: str = "filters") -> dict[str, Any]:
    """A comparison filter (eq, ne, gt, gte, lt, lte, in, nin) or a nestable and/or compound filter."""
    node = require_object(value, param)
    kind = node.get("type")
    allowed = {"type", "filters"} if kind in COMPOUND_OPERATORS else {"type", "key", "value"}
    require_known_keys(node, allowed, param)
    if kind in COMPOUND_OPERATORS:
        children = node.get("filters")
        if not isinstance(children, list) or not children:
            raise invalid_request(f"Invalid '{param}.filters': expected a non-empty array of filters.",
                                  param=f"{param}.filters", code="invalid_type")
        for index, child in enumerate(children):
            validate_filter(child, f"{param}.filters[{index}]")
        return node
    if kind not in COMPARISON_OPERATORS:
        allowed = ", ".join(sorted(COMPARISON_OPERATORS | COMPOUND_OPERATORS))
        raise invalid_request(f"Invalid value for '{param}.type': expected one of {allowed}.",
                              param=f"{param}.type", code="invalid_value")
    require_string(node.get("key"), f"{param}.key")
    operand = node.get("value")
    if kind in ("in", "nin"):
        if not isinstance(operand, list) or not all(isinstance(v, str) or _is_number(v) for v in operand):
            raise invalid_request(f"Invalid '{param}.value': the '{kind}' operator expects an array of strings "
                                  f"or numbers.", param=f"{param}.value", code="invalid_type")
    elif not (isinstance(operand, (str, bool)) or _is_number(operand)):
        raise invalid_request(f"Invalid type for '{param}.value': expected one of string, number or boolean, "
                              f"but got {_json_type(operand)} instead.", param=f"{param}.value", code="invalid_type")
    return node


def validate_chunking_strategy(value: object, param: str = "chunking_strategy") -> dict[str, Any]:
    """The strategy as returned on a vector store file: ``auto`` becomes static 800/400 tokens."""
    if value is None:
        return {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}
    node = require_object(value, param)
    if node.get("type") == "auto":
        return validate_chunking_strategy(None)
    if node.get("type") != "static":
        raise invalid_request(f"Invalid value for '{param}.type': expected one of auto, static.",
                              param=f"{param}.type", code="invalid_value")
    static = require_object(node.get("static"), f"{param}.static")
    size = require_int(static.get("max_chunk_size_tokens"), f"{param}.static.max_chunk_size_tokens",
                       minimum=100, maximum=4096)
    overlap = require_int(static.get("chunk_overlap_tokens"), f"{param}.static.chunk_overlap_tokens", minimum=0)
    if overlap > size // 2:
        raise invalid_request(f"Invalid '{param}.static.chunk_overlap_tokens': must not exceed half of "
                              f"max_chunk_size_tokens.", param=f"{param}.static.chunk_overlap_tokens",
                              code="invalid_value")
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


def _check_key(key: str, param: str) -> None:
    if len(key) > MAX_KEY_CHARS:
        raise invalid_request(f"Invalid '{param}': key '{key[:20]}...' is too long. Expected keys with maximum "
                              f"length {MAX_KEY_CHARS}, but got a key with length {len(key)} instead.",
                              param=param, code="string_above_max_length")


def _check_string_value(value: str, param: str) -> None:
    if len(value) > MAX_STRING_VALUE_CHARS:
        raise invalid_request(f"Invalid '{param}': string too long. Expected a string with maximum length "
                              f"{MAX_STRING_VALUE_CHARS}, but got a string with length {len(value)} instead.",
                              param=param, code="string_above_max_length")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
