"""The OpenAI layer against the stand-in over loopback, with the real SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from common.openai import OpenAIGateway, build_gateway
from common.settings import OpenAISettings

GatewayFactory = Callable[..., OpenAIGateway]


@pytest.fixture(scope="module")
def make_gateway(standin: Any) -> Iterator[GatewayFactory]:
    """``make_gateway(server=None, **OpenAISettings overrides)``: a gateway on its own SDK client (for
    the module's stand-in, or ``server``), closed afterwards."""
    made: list[OpenAIGateway] = []

    def make(server: Any = None, **overrides: Any) -> OpenAIGateway:
        settings = OpenAISettings(**{"api_key": "sk-local", "base_url": (server or standin).base_url,
                                     "timeout_seconds": 5.0, "max_retries": 2, **overrides})
        gateway = build_gateway(settings)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.client.close()


@pytest.fixture(scope="module")
def gateway(make_gateway: GatewayFactory) -> OpenAIGateway:
    return make_gateway()


@pytest.fixture(autouse=True)
def _clean_faults(standin: Any) -> Iterator[None]:
    yield
    standin.clear_faults()
