"""A Database that counts the calls it passes on: the registry tests measure round trips with it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from common.db.base import Database, Identity


class CountingDatabase:
    """Wraps a real Database; ``calls`` counts SQL function calls by name."""

    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def call(self, function: str, args: Mapping[str, Any], identity: Identity) -> Any:
        with self._lock:
            self.calls[function] += 1
        return self.inner.call(function, args, identity)

    @property
    def total(self) -> int:
        return sum(self.calls.values())
