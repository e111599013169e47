"""A reasoning model spends part of the output cap thinking: a capped turn comes back cut short,
with its reasoning tokens counted and priced."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from common.errors import ConfigurationError
from common.openai import OpenAIGateway
from common.openai.responses import TextDelta, TurnRequest, TurnResult
from common.pricing import PriceTable, TokenUsage
from common.settings import Settings
from tests.openai_layer.conftest import GatewayFactory

POLICY = "Refunds are accepted within 30 days of purchase when the receipt is shown at the desk."


@pytest.fixture(scope="module")
def thinking_standin(standin_factory: Any) -> Any:
    """A stand-in whose model spends nine tenths of its output on reasoning."""
    return standin_factory(reasoning_share=0.9)


@pytest.fixture(scope="module")
def make_thinking_gateway(make_gateway: GatewayFactory, thinking_standin: Any) -> Callable[..., OpenAIGateway]:
    return functools.partial(make_gateway, thinking_standin)


@pytest.fixture(scope="module")
def library(make_thinking_gateway: Any) -> tuple[str, str, str]:
    gateway = make_thinking_gateway()
    user, doc_id = str(uuid.uuid4()), str(uuid.uuid4())
    store = gateway.files.create_store(user)
    file_id, _ = gateway.files.upload(doc_id, "refunds.txt", POLICY.encode(), "text/plain")
    gateway.files.attach(store, file_id, document_id=doc_id, owner_id=user)
    return user, store, doc_id


def _turn(library: tuple[str, str, str]) -> TurnRequest:
    user, store, doc_id = library
    return TurnRequest(user_id=user, message="Within how many days are refunds accepted?", session_id="s",
                       message_id=str(uuid.uuid4()), vector_store_id=store, document_ids=[doc_id])


def test_reasoning_is_counted_in_the_output_and_priced(make_thinking_gateway: Any, library: Any) -> None:
    # when a turn is answered with room for reasoning and answer
    result = make_thinking_gateway().chat.answer(_turn(library))
    # then it completed, and most of its output tokens were reasoning, billed as output
    assert result.status == "completed" and not result.cut_short and "30 days" in result.text
    assert result.usage.reasoning_tokens >= 0.85 * result.usage.output_tokens
    prices = PriceTable.load()
    answer_only = prices.turn_cost(result.model, TokenUsage(
        input_tokens=result.usage.input_tokens, output_tokens=result.usage.output_tokens - result.usage.reasoning_tokens))
    assert prices.turn_cost(result.model, result.usage).tokens > answer_only.tokens


def test_a_capped_turn_comes_back_cut_short_with_its_partial_text(make_thinking_gateway: Any, library: Any) -> None:
    # given the output a full answer takes
    full = make_thinking_gateway().chat.answer(_turn(library))
    answer_tokens = full.usage.output_tokens - full.usage.reasoning_tokens
    # when the cap leaves room for the reasoning and half the answer
    cap = full.usage.reasoning_tokens + answer_tokens // 2
    capped = make_thinking_gateway(max_output_tokens=cap)
    events = list(capped.chat.stream(_turn(library)))
    result = events[-1]
    # then the turn is reported cut short, keeps the text it streamed, and counts what it spent
    assert isinstance(result, TurnResult)
    assert result.status == "incomplete" and result.cut_short and result.incomplete_reason == "max_output_tokens"
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed == result.text and 0 < len(result.text) < len(full.text)
    assert result.usage.output_tokens <= cap and result.usage.reasoning_tokens == full.usage.reasoning_tokens
    cost = PriceTable.load().turn_cost(result.model, result.usage)
    assert cost.tokens > 0 and cost.file_search > 0 and cost.price_version


def test_a_cap_smaller_than_the_reasoning_leaves_no_text(make_thinking_gateway: Any, library: Any) -> None:
    result = make_thinking_gateway(max_output_tokens=16).chat.answer(_turn(library))
    assert result.cut_short and result.text == "" and result.usage.reasoning_tokens == 16


def test_no_reasoning_is_spent_at_effort_none(make_thinking_gateway: Any, library: Any) -> None:
    result = make_thinking_gateway(reasoning_effort="none").chat.answer(_turn(library))
    assert result.status == "completed" and result.usage.reasoning_tokens == 0


@pytest.mark.parametrize(("env", "accepted"), [
    ({}, True),
    ({"OPENAI_REASONING_EFFORT": "medium"}, True),
    ({"OPENAI_REASONING_EFFORT": "extreme"}, False),
    ({"OPENAI_MODEL": "gpt-6.1-sol", "OPENAI_REASONING_EFFORT": "none"}, False),
])
def test_the_reasoning_effort_setting_is_checked_against_the_model(env: dict[str, str], accepted: bool) -> None:
    base = {"DATABASE_URL": "postgresql:///unused", "SUPABASE_JWT_SECRET": "s" * 32,
            "JWT_ISSUER": "http://127.0.0.1/auth/v1", "OPENAI_API_KEY": "sk-local"}
    if accepted:
        assert Settings.from_env({**base, **env}).openai.reasoning_effort == env.get("OPENAI_REASONING_EFFORT", "low")
    else:
        with pytest.raises(ConfigurationError) as raised:
            Settings.from_env({**base, **env})
        assert "OPENAI_REASONING_EFFORT" in raised.value.detail
