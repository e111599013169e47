"""Exact costs from known usage, with the default table and with an override file."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from common.errors import ConfigurationError
from common.pricing import PriceTable, TokenUsage


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


def test_turn_cost_with_cached_tokens_and_a_search(prices: PriceTable) -> None:
    # 12,000 input of which 8,000 cached, 400 output, 1 file_search call on gpt-6-luna:
    # 4,000 x 0.10 + 8,000 x 0.01 + 400 x 0.50 per 1M = 0.0004 + 0.00008 + 0.0002; search 2.50 / 1000.
    cost = prices.turn_cost("gpt-6-luna", TokenUsage(input_tokens=12_000, cached_tokens=8_000,
                                                     output_tokens=400, file_search_calls=1))
    assert cost.tokens == Decimal("0.00068000")
    assert cost.file_search == Decimal("0.00250000")
    assert cost.total == Decimal("0.00318000")


def test_cache_writes_and_long_context_surcharge(prices: PriceTable) -> None:
    # gpt-6.1-terra: 300,000 input (> 272K: input rates x2, output x1.5), 100,000 cache writes, 1,000 output.
    cost = prices.turn_cost("gpt-6.1-terra", TokenUsage(input_tokens=300_000, cache_write_tokens=100_000,
                                                        output_tokens=1_000))
    expected = (Decimal(200_000) * Decimal("1.00") + Decimal(100_000) * Decimal("1.25")) * 2 / 1_000_000 \
        + Decimal(1_000) * Decimal("5.00") * Decimal("1.5") / 1_000_000
    assert cost.tokens == expected.quantize(Decimal("0.00000001")) == Decimal("0.65750000")


def test_worst_case_bounds_every_real_turn(prices: PriceTable) -> None:
    bound = prices.max_turn_cost("gpt-6-luna", max_input_tokens=50_000, max_output_tokens=1_000, max_tool_calls=2)
    real = prices.turn_cost("gpt-6-luna", TokenUsage(input_tokens=50_000, cache_write_tokens=50_000,
                                                     output_tokens=1_000, file_search_calls=2))
    assert real.total <= bound == Decimal("0.01175000")


def test_storage_cost_after_the_free_allowance(prices: PriceTable) -> None:
    assert prices.storage_cost(Decimal("0.5")) == 0
    assert prices.storage_cost(prices.gb_days(3 * 1024**3)) == Decimal("0.20000000")


def test_unknown_model_is_an_error_not_zero(prices: PriceTable) -> None:
    with pytest.raises(ConfigurationError):
        prices.turn_cost("gpt-imaginary", TokenUsage(input_tokens=1))


def test_cached_tokens_cannot_exceed_input(prices: PriceTable) -> None:
    with pytest.raises(ValueError):
        prices.turn_cost("gpt-6-luna", TokenUsage(input_tokens=10, cached_tokens=11))


def test_override_file_replaces_the_table(tmp_path: Path) -> None:
    table = {"version": "2031-01-01 house contract", "models": {"house-model": {"input": "3", "cached_input": "1", "output": "6"}},
             "file_search_per_1k_calls": "5", "vector_storage_per_gb_day": "0.2", "vector_storage_free_gb": "0"}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(table))
    prices = PriceTable.load(path)
    cost = prices.turn_cost("house-model", TokenUsage(input_tokens=1_000_000, cached_tokens=500_000,
                                                      output_tokens=100_000, file_search_calls=2))
    assert cost.total == Decimal("1.5") + Decimal("0.5") + Decimal("0.6") + Decimal("0.01")
    assert cost.price_version == prices.version == "2031-01-01 house contract"
    with pytest.raises(ConfigurationError):
        prices.model("gpt-6-luna")


_VALID_REST = {"file_search_per_1k_calls": "1", "vector_storage_per_gb_day": "1", "vector_storage_free_gb": "1"}


@pytest.mark.parametrize("bad", [
    {"version": "v", "models": {}},
    {"version": "v", "models": {"m": {"input": "-0.1", "cached_input": "0", "output": "1"}}, **_VALID_REST},
    {"models": {"m": {"input": "0.1", "cached_input": "0", "output": "1"}}, **_VALID_REST},  # no version
    {"version": " ", "models": {"m": {"input": "0.1", "cached_input": "0", "output": "1"}}, **_VALID_REST},
])
def test_a_broken_override_fails_loudly(tmp_path: Path, bad: dict) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigurationError):
        PriceTable.load(path)


def test_a_missing_override_file_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        PriceTable.load(tmp_path / "absent.json")


def test_a_function_whose_model_has_no_price_fails_when_it_starts_pricing() -> None:
    from common.runtime import Runtime
    from common.settings import AuthSettings, DatabaseSettings, OpenAISettings, Settings

    settings = Settings(database=DatabaseSettings(database_url="postgresql:///unused"),
                        auth=AuthSettings(issuer="http://127.0.0.1/auth/v1", jwt_secret="s" * 32),
                        openai_settings=OpenAISettings(api_key="sk-local", model="gpt-imaginary"))
    with pytest.raises(ConfigurationError):
        Runtime(settings).prices  # noqa: B018 - building it is the check


def test_every_cost_carries_the_version_of_the_table_it_used(prices: PriceTable) -> None:
    # given the default table, which names its date and source
    assert prices.version.startswith("2026-11-25 ")
    # when a turn is priced, then its cost says which prices it used
    cost = prices.turn_cost("gpt-6-luna", TokenUsage(input_tokens=100, output_tokens=10))
    assert cost.price_version == prices.version


@pytest.mark.parametrize("model", ["gpt-6.2-astra", "gpt-6.2-sol"])
def test_models_without_a_known_price_stay_unpriced(prices: PriceTable, model: str) -> None:
    # the 6.2 models were released on 2026-11-17, but no source for their prices was available:
    # the table refuses them rather than guessing
    with pytest.raises(ConfigurationError):
        prices.turn_cost(model, TokenUsage(input_tokens=100, output_tokens=10))
