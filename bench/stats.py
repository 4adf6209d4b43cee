"""The statistics of a budget on a shared machine: paired ratios, their median and a distribution-free interval.

Every cold-start budget is a ratio of two fresh processes (ours / its floor, ours / Cloud Custodian's) taken back
to back, so that whatever else the machine is doing touches both alike; the order inside a pair alternates. The
figure is the median of the per-pair ratios, and its spread is the confidence interval of that median from order
statistics (the ratios sorted; the k-th smallest and k-th largest, with k from the binomial distribution of
"how many ratios fall below the true median"): it assumes nothing about the shape of the noise, and a few runs
slowed by a neighbour move it little. A budget is decided only when the whole interval is on one side of the
limit; otherwise more pairs are taken, up to a cap, and a budget still straddling its limit there is reported as
undecided, never as a pass or a fail by chance.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Literal

Verdict = Literal["pass", "fail", "undecided"]
CONFIDENCE = 0.95


def _rank(n: int, confidence: float) -> tuple[int, float]:
    """k, the largest rank with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2, and that probability."""
    tail = (1 - confidence) / 2
    k, below = 0, 0.0
    while k < n // 2:
        below_next = below + math.comb(n, k) / 2**n  # P(X <= k)
        if below_next > tail:
            break
        below, k = below_next, k + 1
    return k, below


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The order-statistics interval [x(k), x(n+1-k)] that holds the median with at least `confidence`.

    Too few values for any rank k (fewer than 6 at 95%) give the whole range, which is all they can say.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    k = max(_rank(len(ordered), confidence)[0], 1)
    return ordered[k - 1], ordered[len(ordered) - k]


def coverage(n: int, confidence: float = CONFIDENCE) -> float:
    """The confidence the interval for n values really has (order statistics give discrete levels)."""
    k, below = _rank(n, confidence)
    return 1 - 2 * below if k else 0.0


def verdict(low: float, high: float, limit: float) -> Verdict:
    """pass: the whole interval is within the limit; fail: the whole interval is over it; else undecided."""
    if high <= limit:
        return "pass"
    if low > limit:
        return "fail"
    return "undecided"


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators for {len(denominators)} denominators: not paired")
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def summary(values: Sequence[float], limit: float, confidence: float = CONFIDENCE) -> dict[str, object]:
    """The median ratio, its interval, the quartiles and the verdict against `limit`, as results.json holds them."""
    low, high = median_interval(values, confidence)
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0], 0, values[0])
    return {
        "median": round(statistics.median(values), 3),
        "interval": [round(low, 3), round(high, 3)],
        "confidence": round(coverage(len(values), confidence), 3),
        "quartiles": [round(q1, 3), round(q3, 3)],
        "pairs": len(values),
        "limit": limit,
        "verdict": verdict(low, high, limit),
    }
