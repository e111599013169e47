"""Cursor pagination in OpenAI's list envelope.

Lists answer ``{"object": "list", "data", "first_id", "last_id", "has_more"}``; ``after`` and
``before`` name an object id, ``order`` sorts by creation (``asc`` or ``desc``). Objects are ordered by
a creation sequence number rather than ``created_at`` (whole seconds), so pages never skip or repeat
objects created within the same second. A cursor naming an object deleted since still works: its
sequence number is remembered (see :meth:`State.cursor_seq`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import invalid_request
from .validation import require_int


@dataclass(frozen=True)
class ListParams:
    """The parsed ``limit``/``order``/``after``/``before`` query of a list endpoint."""

    limit: int
    order: str
    after: str | None
    before: str | None


def parse_list_params(args: Mapping[str, str], *, default_limit: int, max_limit: int,
                      default_order: str = "desc") -> ListParams:
    """Parse the query string of a list call; 400 on a limit out of range or an unknown order."""
    raw_limit = args.get("limit")
    limit = default_limit
    if raw_limit is not None:
        try:
            parsed = int(raw_limit)
        except ValueError:
            raise invalid_request(f"Invalid 'limit': expected an integer, but got '{raw_limit}' instead.",
                                  param="limit", code="invalid_type") from None
        limit = require_int(parsed, "limit", minimum=1, maximum=max_limit)
    order = args.get("order") or default_order
    if order not in ("asc", "desc"):
        raise invalid_request(f"Invalid value for 'order': expected one of asc, desc, but got '{order}' instead.",
                              param="order", code="invalid_value")
    return ListParams(limit=limit, order=order, after=args.get("after") or None, before=args.get("before") or None)


def paginate(records: Sequence[dict[str, Any]], params: ListParams, *, cursor_seq: Callable[[str], int | None],
             render: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """One page of ``records`` (each with ``id`` and ``seq``) as an OpenAI list envelope.

    Raises a 400 when ``after``/``before`` names an id that never existed.
    """
    ordered = sorted(records, key=lambda record: record["seq"], reverse=params.order == "desc")
    if params.after is not None:
        pivot = _cursor(params.after, "after", cursor_seq)
        ordered = [r for r in ordered if (r["seq"] > pivot if params.order == "asc" else r["seq"] < pivot)]
    if params.before is not None:
        pivot = _cursor(params.before, "before", cursor_seq)
        ordered = [r for r in ordered if (r["seq"] < pivot if params.order == "asc" else r["seq"] > pivot)]
        # "before" pages end right before the cursor: keep the closest `limit` objects.
        if len(ordered) > params.limit:
            ordered = ordered[len(ordered) - params.limit:]
            return envelope([render(r) for r in ordered], has_more=True)
    page = ordered[: params.limit]
    return envelope([render(r) for r in page], has_more=len(ordered) > params.limit)


def envelope(data: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    """The list envelope around ``data`` (``first_id``/``last_id`` are null when it is empty)."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _cursor(object_id: str, param: str, cursor_seq: Callable[[str], int | None]) -> int:
    seq = cursor_seq(object_id)
    if seq is None:
        raise invalid_request(f"Invalid '{param}': no object with id '{object_id}'.", param=param,
                              code="invalid_value")
    return seq
