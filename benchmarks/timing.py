"""Latency figures: percentiles of samples and the timing of repeated calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Latency:
    """p50 and p95 in milliseconds over ``count`` samples, and the throughput they were taken at."""

    p50_ms: float
    p95_ms: float
    count: int
    per_second: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: (round(value, 3) if isinstance(value, float) else value) for key, value in asdict(self).items()}


def percentile(sorted_samples: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of already sorted samples; raises ValueError when there are none."""
    if not sorted_samples:
        raise ValueError("no samples")
    rank = max(1, round(share * len(sorted_samples)))
    return sorted_samples[min(rank, len(sorted_samples)) - 1]


def latency_of(seconds: Sequence[float], *, wall_seconds: float | None = None) -> Latency:
    """The figures of samples given in seconds; ``wall_seconds`` (the run's duration) gives requests/s."""
    ordered = sorted(seconds)
    rate = len(ordered) / wall_seconds if wall_seconds else None
    return Latency(p50_ms=percentile(ordered, 0.5) * 1000, p95_ms=percentile(ordered, 0.95) * 1000,
                   count=len(ordered), per_second=rate)


def time_calls(call: Callable[[], object], count: int) -> Latency:
    """Call ``call`` ``count`` times in a row (after one untimed warm-up call) and return its latency."""
    call()
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        begun = time.perf_counter()
        call()
        samples.append(time.perf_counter() - begun)
    return latency_of(samples, wall_seconds=time.perf_counter() - started)


def median(values: Sequence[float]) -> float:
    """The median of ``values``; raises statistics.StatisticsError when there are none."""
    return statistics.median(values)
