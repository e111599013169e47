"""Exact costs from reported usage, with the price table kept in one place (``common/prices.json``,
overridable by the file named in ``PRICE_TABLE_FILE``). Money is ``Decimal`` throughout.

Cost of one turn (per 1M tokens; cache reads and writes are parts of ``input_tokens``)::

    uncached = input - cached - cache_write
    cost = uncached*input + cached*cached_input + cache_write*cache_write_rate + output*output
           (x2 on input rates and x1.5 on output when input exceeds the model's long-context threshold)
         + file_search_calls * file_search_per_1k_calls / 1000

Vector storage: GB-days beyond the free allowance (binary GB), at ``vector_storage_per_gb_day``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from common.errors import ConfigurationError

DEFAULT_TABLE = Path(__file__).with_name("prices.json")
MILLION = Decimal(1_000_000)
GIB = Decimal(1024**3)
QUANTUM = Decimal("0.00000001")  # numeric(14, 8) in SQL


@dataclass(frozen=True)
class ModelPrice:
    input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal
    long_context_threshold: int | None = None


@dataclass(frozen=True)
class TokenUsage:
    """Usage of one response as OpenAI reports it, plus the file_search calls counted from its output."""

    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    file_search_calls: int = 0


@dataclass(frozen=True)
class TurnCost:
    tokens: Decimal
    file_search: Decimal
    price_version: str = ""  # the PriceTable.version it was computed with, stored beside the cost

    @property
    def total(self) -> Decimal:
        return self.tokens + self.file_search


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, float) or value is None:
        raise ConfigurationError(f"price table: {where} must be a decimal string")
    try:
        result = Decimal(str(value))
    except ArithmeticError as exc:
        raise ConfigurationError(f"price table: {where} is not a number") from exc
    if result < 0:
        raise ConfigurationError(f"price table: {where} is negative")
    return result


class PriceTable:
    """Prices per model and for tools and storage; raises ConfigurationError for unknown models.

    ``version`` ("<date> <source>") names the table; every cost computed from it carries it, so a
    recorded cost says which prices it used."""

    def __init__(self, data: dict[str, Any]) -> None:
        try:
            version = data["version"]
            if not isinstance(version, str) or not version.strip():
                raise ConfigurationError("price table: version must be a non-empty string (date and source)")
            self.version = version.strip()
            models = data["models"]
            self.models = {
                name: ModelPrice(
                    input=_decimal(p["input"], f"{name}.input"),
                    cached_input=_decimal(p["cached_input"], f"{name}.cached_input"),
                    cache_write=_decimal(p.get("cache_write", "0"), f"{name}.cache_write"),
                    output=_decimal(p["output"], f"{name}.output"),
                    long_context_threshold=p.get("long_context_threshold"),
                )
                for name, p in models.items()
            }
            long_context = data.get("long_context", {"input_multiplier": "1", "output_multiplier": "1"})
            self.long_input_multiplier = _decimal(long_context["input_multiplier"], "long_context.input_multiplier")
            self.long_output_multiplier = _decimal(long_context["output_multiplier"], "long_context.output_multiplier")
            self.file_search_per_1k = _decimal(data["file_search_per_1k_calls"], "file_search_per_1k_calls")
            self.storage_per_gb_day = _decimal(data["vector_storage_per_gb_day"], "vector_storage_per_gb_day")
            self.storage_free_gb = _decimal(data["vector_storage_free_gb"], "vector_storage_free_gb")
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError(f"price table is missing {exc}") from exc

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """The default table, or the JSON file at ``path`` (which replaces it whole)."""
        source = Path(path) if path else DEFAULT_TABLE
        try:
            data = json.loads(source.read_text(encoding="utf-8"), parse_float=Decimal)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read price table {source}: {exc}") from exc
        return cls(data)

    def model(self, name: str) -> ModelPrice:
        try:
            return self.models[name]
        except KeyError:
            raise ConfigurationError(f"no price for model {name!r}; add it to the price table") from None

    def turn_cost(self, model: str, usage: TokenUsage) -> TurnCost:
        price = self.model(model)
        if usage.cached_tokens + usage.cache_write_tokens > usage.input_tokens:
            raise ValueError("cached and cache-write tokens are parts of input_tokens")
        in_mult = out_mult = Decimal(1)
        if price.long_context_threshold is not None and usage.input_tokens > price.long_context_threshold:
            in_mult, out_mult = self.long_input_multiplier, self.long_output_multiplier
        uncached = usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens
        tokens = (
            (Decimal(uncached) * price.input + Decimal(usage.cached_tokens) * price.cached_input
             + Decimal(usage.cache_write_tokens) * price.cache_write) * in_mult
            + Decimal(usage.output_tokens) * price.output * out_mult
        ) / MILLION
        file_search = Decimal(usage.file_search_calls) * self.file_search_per_1k / 1000
        return TurnCost(tokens=tokens.quantize(QUANTUM), file_search=file_search.quantize(QUANTUM),
                        price_version=self.version)

    def max_turn_cost(self, model: str, *, max_input_tokens: int, max_output_tokens: int,
                      max_tool_calls: int) -> Decimal:
        """Worst case of one bounded turn: every input token uncached (or written to cache, whichever
        costs more), the output cap reached, every allowed search made."""
        price = self.model(model)
        worst_input = max(price.input, price.cache_write)
        in_mult = out_mult = Decimal(1)
        if price.long_context_threshold is not None and max_input_tokens > price.long_context_threshold:
            in_mult, out_mult = self.long_input_multiplier, self.long_output_multiplier
        tokens = (Decimal(max_input_tokens) * worst_input * in_mult
                  + Decimal(max_output_tokens) * price.output * out_mult) / MILLION
        return (tokens + Decimal(max_tool_calls) * self.file_search_per_1k / 1000).quantize(QUANTUM)

    def storage_cost(self, gb_days: Decimal, *, free_gb_days: Decimal | None = None) -> Decimal:
        """Cost of ``gb_days`` of vector storage after ``free_gb_days`` (default: one day of the free GB)."""
        free = self.storage_free_gb if free_gb_days is None else free_gb_days
        return (max(gb_days - free, Decimal(0)) * self.storage_per_gb_day).quantize(QUANTUM)

    @staticmethod
    def gb_days(usage_bytes: int, days: Decimal = Decimal(1)) -> Decimal:
        return (Decimal(usage_bytes) / GIB * days).quantize(QUANTUM)
