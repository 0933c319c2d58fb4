"""The funnel's table (text and markdown), its CSV and its learning-curve plots, from cells or logged summaries."""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from gp_backprop.funnel.plan import Cell, Finalist, Summary

BOLD_MARGIN = 0.1   # percentage points above the baseline, as the paper's bold (reference §4)


def marked(entry: Summary | Cell, baseline: Summary | Cell) -> bool:
    return not entry.finalist.baseline and entry.mean >= baseline.mean + BOLD_MARGIN


def _grid(rows: Sequence[Summary]) -> tuple[list[Finalist], list[str], dict[tuple[str, str], Summary]]:
    finalists, labels, grid = [], [], {}
    for r in rows:
        if r.finalist not in finalists:
            finalists.append(r.finalist)
        if r.label not in labels:
            labels.append(r.label)
        grid[(r.finalist.key, r.label)] = r
    return finalists, labels, grid


def table(rows: Sequence[Summary | Cell], markdown: bool = False) -> str:
    """Rows: the baseline, then each equation; columns: setup x optimizer; mean ± std test accuracy (%) over seeds.
    Entries at least 0.1 points above the baseline are marked (* in text, bold in markdown)."""
    finalists, labels, grid = _grid([r if isinstance(r, Summary) else Summary.of(r) for r in rows])
    base = next(f for f in finalists if f.baseline)

    def entry(f: Finalist, label: str) -> str:
        c = grid[(f.key, label)]
        text = f"{c.mean:.2f} ± {c.std:.2f}"
        if marked(c, grid[(base.key, label)]):
            return f"**{text}**" if markdown else f"{text} *"
        return text

    names = [("baseline " if f.baseline else "") + f.equation for f in finalists]
    if markdown:
        lines = ["| equation | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        lines += [f"| `{n}` | " + " | ".join(entry(f, lb) for lb in labels) + " |" for n, f in zip(names, finalists)]
        return "\n".join(lines)
    width = max(len(n) for n in names)
    lines = [f"{'equation':<{width}}  " + "  ".join(f"{lb:<17}" for lb in labels)]
    lines += [f"{n:<{width}}  " + "  ".join(f"{entry(f, lb):<17}" for lb in labels) for n, f in zip(names, finalists)]
    return "\n".join(lines)


def write_csv(cells: Sequence[Cell], path: str | Path) -> None:
    """One row per (equation, setup): the text and LaTeX, the numbers, each seed's test accuracy and the statuses."""
    base = {c.setup.label: c for c in cells if c.finalist.baseline}
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["setup", "optimizer", "equation", "latex", "key", "baseline", "test_acc_mean", "test_acc_std",
                    "marked", "seeds_test_acc", "statuses", "search_fitness"])
        for c in cells:
            w.writerow([c.setup.name, c.setup.optimizer, c.finalist.equation, c.finalist.latex, c.finalist.key,
                        c.finalist.baseline, f"{c.mean:.4f}", f"{c.std:.4f}", marked(c, base[c.setup.label]),
                        " ".join(f"{a:.4f}" for a in c.test_accs()), c.statuses(), c.finalist.fitness])


def plot_curves(cells: Sequence[Cell], label: str, path: str | Path, top: int = 3) -> None:
    """Mean validation curves of the top equations against the baseline in one setup."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [c for c in cells if c.setup.label == label]
    chosen = [c for c in chosen if c.finalist.baseline] + [c for c in chosen if not c.finalist.baseline][:top]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c in chosen:
        curve = c.val_curve()
        ax.plot(range(1, len(curve) + 1), curve, lw=2.2 if c.finalist.baseline else 1.4,
                color="black" if c.finalist.baseline else None,
                label=(f"{c.finalist.name or c.finalist.equation} (baseline)" if c.finalist.baseline
                       else c.finalist.equation)[:60])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (mean over seeds)")
    ax.set_title(f"{label}: {chosen[0].setup.description}"[:90], fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
