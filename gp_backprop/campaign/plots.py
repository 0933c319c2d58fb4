"""The campaign's own plots (PNG; the learning curves per setup are the funnel's, ``funnel.plot_curves``): the best
fitness against candidates for each search seed with the reference's line, and the paired differences of each rule
against each control with their 95% t-intervals, per setup."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gp_backprop.funnel import Cell, Summary, paired_interval
from gp_backprop.render import fitness_curves

__all__ = ["plot_searches", "plot_differences"]


def _figure(width: float, height: float):   # noqa: ANN202 (matplotlib's Figure, imported late: it is slow)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure   # no pyplot: no global state

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_searches(series: Sequence[tuple[str, Sequence[float]]], reference: tuple[str, float] | None,
                  path: str | Path) -> None:
    """Best fitness so far against candidates evaluated, one line per search (``(label, fitness in evaluation
    order)``), and the reference seed's search fitness as a dashed line."""
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    for label, fitness in series:
        xs, best, _, _ = fitness_curves(fitness)
        ax.plot(xs, best, label=label, drawstyle="steps-post")
    if reference is not None:
        ax.axhline(reference[1], color="k", linestyle="--", linewidth=1,
                   label=f"{reference[0]} (reference, {reference[1]:.4f})")
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel("best fitness so far (validation accuracy)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def plot_differences(cells: Sequence[Cell], path: str | Path, numbers: dict[str, int]) -> None:
    """Per setup, each rule's mean paired difference in test accuracy against each control, with its 95% t-interval
    (one comparison's interval, not corrected for the table's many: Holm's p-values are in the table)."""
    sums = [Summary.of(c) for c in cells]
    labels = list(dict.fromkeys(s.label for s in sums))
    controls = list(dict.fromkeys(s.finalist.key for s in sums if s.finalist.control))
    names = {s.finalist.key: s.finalist.name for s in sums}
    rules = [k for k in numbers]
    fig = _figure(max(6.0, 3.2 * len(labels) + 1.5), 0.35 * len(rules) * len(controls) + 2.2)
    axes = fig.subplots(1, len(labels), sharey=True, squeeze=False)[0]
    for ax, label in zip(axes, labels):
        by_key = {s.finalist.key: s for s in sums if s.label == label}
        for j, ckey in enumerate(controls):
            ys, means, errors = [], [], [[], []]
            for i, key in enumerate(rules):
                rule, control = by_key.get(key), by_key.get(ckey)
                if rule is None or control is None or len(rule.accs) != len(control.accs) or len(rule.accs) < 2:
                    continue
                mean, low, high = paired_interval(rule.accs, control.accs)
                ys.append(i + 0.25 * (j - (len(controls) - 1) / 2))
                means.append(mean)
                errors[0].append(mean - low)
                errors[1].append(high - mean)
            ax.errorbar(means, ys, xerr=errors, fmt="o", capsize=3, markersize=4, label=f"vs {names[ckey]}")
        ax.axvline(0.0, color="k", linewidth=0.8)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("difference (points)")
        ax.grid(alpha=0.3)
    axes[0].set_yticks(range(len(rules)), [f"rule {numbers[k]}" for k in rules])
    axes[0].invert_yaxis()
    handles, names_ = axes[0].get_legend_handles_labels()
    fig.legend(handles, names_, loc="lower center", ncol=len(controls), fontsize=8)
    fig.suptitle("rule minus control in test accuracy: mean over paired seeds, 95% t-interval", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path)
