"""The funnel's statistics: each finalist against each control on the same fresh seeds (a paired t-test), and Holm's
correction over every comparison of the table, so a ``*`` survives the number of comparisons made.

Holm (1979) controls the family-wise error rate: the chance that any ``*`` in the whole table is a false win stays
under ``ALPHA``, whatever the number of finalists, setups and controls.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.special import stdtr, stdtrit

__all__ = ["ALPHA", "Comparison", "paired_t", "paired_interval", "holm", "wins_ties_losses"]

ALPHA = 0.05


@dataclass(frozen=True)
class Comparison:
    """A finalist against a control in one setup, over the same seeds."""

    diff: float                # mean of (finalist - control), in the table's units
    p: float                   # two-sided paired t-test
    p_holm: float              # after Holm's correction over the whole table
    wins: int
    ties: int
    losses: int

    @property
    def significant_win(self) -> bool:
        return self.diff > 0 and self.p_holm < ALPHA


def paired_t(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean difference ``a - b`` and the two-sided p-value of the paired t-test (as ``scipy.stats.ttest_rel``).

    With identical differences on every seed the t statistic is undefined: p is 1 when they are all zero (no
    evidence either way) and 0 otherwise (every seed moved the same way by the same amount)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired test needs two equally long samples of at least 2, got {len(a)} and {len(b)}")
    d = [x - y for x, y in zip(a, b)]
    mean = statistics.fmean(d)
    sd = statistics.stdev(d)
    if sd == 0.0:
        return mean, 1.0 if mean == 0.0 else 0.0
    t = mean / (sd / math.sqrt(len(d)))
    return mean, float(2.0 * stdtr(len(d) - 1, -abs(t)))


def paired_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean difference ``a - b`` over paired seeds and its two-sided t confidence interval ``(mean, low, high)``: the
    interval of the paired t-test, for one comparison (not corrected for the table's many)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired interval needs two equally long samples of at least 2, got {len(a)} and {len(b)}")
    d = [x - y for x, y in zip(a, b)]
    mean = statistics.fmean(d)
    half = float(stdtrit(len(d) - 1, 0.5 + level / 2)) * statistics.stdev(d) / math.sqrt(len(d))
    return mean, mean - half, mean + half


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input's order: the i-th smallest times (m - i + 1), kept monotone, capped at 1."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def wins_ties_losses(a: Sequence[float], b: Sequence[float]) -> tuple[int, int, int]:
    """Seeds on which ``a`` beat, equalled or lost to ``b``."""
    return (sum(x > y for x, y in zip(a, b)), sum(x == y for x, y in zip(a, b)), sum(x < y for x, y in zip(a, b)))
