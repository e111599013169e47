"""The battery's fixtures: every function served on one loopback port over the module's database
and stand-in, and the long-run switch (``./deploy.sh test --long`` sets ``DOCCHAT_LONG=1``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from common.runtime import Runtime
from tests.battery.stack import Stack, start_stack

LONG = os.environ.get("DOCCHAT_LONG", "") == "1"


@pytest.fixture(scope="module")
def stack(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    served = start_stack(tmp_path_factory.mktemp("battery-functions"), runtime)
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def _no_leftover_faults(standin: Any) -> Iterator[None]:
    yield
    standin.clear_faults()
