"""The database port: call SQL function F with arguments A as identity I.

Every operation of the product is one SQL function in ``sql/`` (D2). Python reaches them only through
:class:`Database`, which has two transports with the same behaviour: supabase-py RPC
(:mod:`common.db.supabase_transport`) and psycopg (:mod:`common.db.psycopg_transport`). Both run the
function in one transaction with PostgREST's ``role`` and ``request.jwt.claims``, so Row Level
Security and the functions' own checks apply identically.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

from common.errors import InvalidInputError

Role = Literal["authenticated", "service_role"]

_FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ARG_NAME = re.compile(r"^p_[a-z0-9_]{1,60}$")


@dataclass(frozen=True)
class Identity:
    """Who calls a SQL function: a signed-in user (verified claims + raw token), the service role, or
    the service role acting for a user (the backend API, DESIGN.md D2).

    A backend-API function is granted to ``service_role`` only and takes the acting user as its
    ``p_user_id`` argument; :meth:`backend` carries that user, and :func:`call_args` adds the argument,
    so a call site never passes it by hand and cannot pass another."""

    role: Role
    claims: Mapping[str, Any]
    token: str | None = field(default=None, repr=False)
    acting_user_id: str | None = None

    @classmethod
    def service(cls) -> Identity:
        return cls(role="service_role", claims={"role": "service_role"})

    @classmethod
    def backend(cls, user_id: str) -> Identity:
        """The service role acting for ``user_id``, taken from a token the backend verified."""
        if not user_id:
            raise ValueError("a backend call needs the acting user's id")
        return cls(role="service_role", claims={"role": "service_role"}, acting_user_id=str(user_id))

    @classmethod
    def user(cls, claims: Mapping[str, Any], token: str | None = None) -> Identity:
        return cls(role="authenticated", claims=dict(claims), token=token)

    @property
    def user_id(self) -> str | None:
        sub = self.claims.get("sub")
        return str(sub) if sub else None

    def jwt_claims(self) -> dict[str, Any]:
        """The claims as PostgREST puts them in ``request.jwt.claims`` (with ``role``)."""
        return {**self.claims, "role": self.role}


class Database(Protocol):
    """One call per operation; raises a :class:`common.errors.AppError` subclass on failure.

    ``read=True`` marks a call to a function that writes nothing (STABLE or IMMUTABLE): a transport
    may send it again when its answer was lost. Leave it False for everything else."""

    def call(self, function: str, args: Mapping[str, Any], identity: Identity, *, read: bool = False) -> Any: ...


def check_function_name(function: str) -> str:
    if not _FUNCTION_NAME.match(function):
        raise ValueError(f"not a SQL function name: {function!r}")
    return function


def check_arg_names(args: Mapping[str, Any]) -> None:
    """Both transports refuse the same names: SQL API arguments start with ``p_``."""
    for name in args:
        if not _ARG_NAME.match(name):
            raise ValueError(f"SQL argument names start with p_: {name!r}")


def _holds_nul(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (nested mappings and lists included) holds U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds_nul(v) for v in value)
    return False


def check_arg_values(args: Mapping[str, Any]) -> None:
    """Refuse a NUL character in any string argument (InvalidInputError, naming the argument).
    PostgreSQL's text and jsonb cannot hold one: psycopg refuses it before sending and PostgREST
    after, so both transports refuse it here, before any I/O, alike."""
    bad = sorted(name for name, value in args.items() if _holds_nul(value))
    if bad:
        raise InvalidInputError(f"Text may not contain NUL characters ({', '.join(bad)}).")


def call_args(args: Mapping[str, Any], identity: Identity) -> dict[str, Any]:
    """The arguments a transport sends: ``p_user_id`` added for a backend call, names and values
    checked. Raises ValueError for a bad name (a bug), InvalidInputError for a NUL in a string."""
    check_arg_names(args)
    check_arg_values(args)
    if identity.acting_user_id is None:
        return dict(args)
    if "p_user_id" in args:
        raise ValueError("a backend call takes its acting user from the identity, not from p_user_id")
    return {"p_user_id": identity.acting_user_id, **args}


def to_json_value(value: Any) -> Any:
    """Arguments as JSON would carry them: exact decimals and datetimes become strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (uuid.UUID,)):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value
