"""The funnel's table (text and markdown), its CSV and its learning-curve plots, from cells or logged summaries.

Each setup is one block: the controls, then the finalists in the search's order, each with mean ± std test accuracy
over the fresh seeds and, against each control, the paired difference, Holm-corrected p-value and wins/ties/losses.
A ``*`` (bold in markdown) marks a finalist that beats every control of its setup at ``stats.ALPHA`` after Holm.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from gp_backprop.funnel.plan import Cell, Summary
from gp_backprop.funnel.stats import ALPHA, Comparison, holm, paired_t, wins_ties_losses

__all__ = ["compare", "marked", "table", "write_csv", "plot_curves", "legend"]

Key = tuple[str, str, str]   # (finalist key, setup label, control key)


def _summaries(rows: Sequence[Summary | Cell]) -> list[Summary]:
    return [r if isinstance(r, Summary) else Summary.of(r) for r in rows]


def compare(rows: Sequence[Summary | Cell]) -> dict[Key, Comparison]:
    """Every finalist against every control of its setup, and every other control against the first (the search's
    reference: does a control itself beat it?), Holm-corrected over the whole table."""
    sums = _summaries(rows)
    controls = [s for s in sums if s.finalist.control]
    reference = controls[0].finalist.key if controls else ""
    raw: dict[Key, tuple[float, float, tuple[int, int, int]]] = {}
    for s in sums:
        if s.finalist.key == reference:
            continue
        for c in controls if not s.finalist.control else [c for c in controls if c.finalist.key == reference]:
            if c.label == s.label and len(c.accs) == len(s.accs) >= 2:
                diff, p = paired_t(s.accs, c.accs)
                raw[(s.finalist.key, s.label, c.finalist.key)] = (diff, p, wins_ties_losses(s.accs, c.accs))
    adjusted = holm([v[1] for v in raw.values()])
    return {k: Comparison(d, p, q, *wtl) for (k, (d, p, wtl)), q in zip(raw.items(), adjusted)}


def marked(s: Summary, comparisons: dict[Key, Comparison]) -> bool:
    """A finalist that beats every control of its setup, significantly after correction."""
    mine = [c for k, c in comparisons.items() if k[:2] == (s.finalist.key, s.label)]
    return bool(mine) and all(c.significant_win for c in mine)


def legend(seeds: int) -> str:
    return (f"test accuracy (%), mean ± std over {seeds} fresh seeds, each row at its own tuned lr; vs a control: "
            f"mean paired difference, Holm-corrected p (paired t-test), wins/ties/losses over seeds (a control against "
            f"the reference too); * = beats every control of its setup at p < {ALPHA} after Holm's correction over "
            f"the whole table")


def table(rows: Sequence[Summary | Cell], markdown: bool = False) -> str:
    sums = _summaries(rows)
    comps = compare(sums)
    controls = list(dict.fromkeys((s.finalist.key, s.finalist.name) for s in sums if s.finalist.control))
    out: list[str] = []
    for label in dict.fromkeys(s.label for s in sums):
        block = [s for s in sums if s.label == label]
        block = [s for s in block if s.finalist.control] + [s for s in block if not s.finalist.control]
        head = ["row", f"{label}: mean ± std"] + [f"vs {name}" for _, name in controls]
        lines = []
        for i, s in enumerate(block):
            cells = [_name(s, i, len(controls), markdown), _value(s, comps, markdown)]
            for key, _ in controls:
                comp = comps.get((s.finalist.key, label, key))
                cells.append("" if comp is None else f"{comp.diff:+.2f}, p={comp.p_holm:.3f}, "
                                                     f"{comp.wins}/{comp.ties}/{comp.losses}")
            lines.append(cells)
        out.append(_format(head, lines, markdown))
    return "\n\n".join(out)


def _name(s: Summary, i: int, n_controls: int, markdown: bool) -> str:
    found = f"; the search found it: {s.finalist.found}" if s.finalist.found else ""
    name = f"{s.finalist.control} (control{found})" if s.finalist.control else \
        f"{i - n_controls + 1}. {s.finalist.equation}"
    return f"`{name}`" if markdown and not s.finalist.control else name


def _value(s: Summary, comps: dict[Key, Comparison], markdown: bool) -> str:
    text = f"{s.mean:.2f} ± {s.std:.2f}"
    if not s.finalist.control and marked(s, comps):
        return f"**{text}**" if markdown else f"{text} *"
    return text


def _format(head: list[str], lines: list[list[str]], markdown: bool) -> str:
    if markdown:   # a | inside a cell (g/||g||_F) would end it
        rows = ["| " + " | ".join(x.replace("|", "\\|") for x in line) + " |" for line in [head, *lines]]
        return "\n".join([rows[0], "|---" * len(head) + "|", *rows[1:]])
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *lines])


def write_csv(cells: Sequence[Cell], path: str | Path) -> None:
    """One row per (row, setup) and control: the text and LaTeX, the numbers, each seed's test accuracy, the
    comparison, and the statuses."""
    comps = compare(cells)
    controls = list(dict.fromkeys((c.finalist.key, c.finalist.name) for c in cells if c.finalist.control))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["setup", "optimizer", "equation", "latex", "key", "control", "lr_factor", "test_acc_mean",
                    "test_acc_std", "marked", "seeds_test_acc", "statuses", "search_fitness", "versus",
                    "diff", "p", "p_holm", "wins", "ties", "losses"])
        for c in cells:
            base = [c.setup.name, c.setup.optimizer, c.finalist.equation, c.finalist.latex, c.finalist.key,
                    c.finalist.control, f"{c.finalist.lr_factor:g}", f"{c.mean:.4f}", f"{c.std:.4f}",
                    marked(Summary.of(c), comps), " ".join(f"{a:.4f}" for a in c.test_accs()), c.statuses(),
                    c.finalist.fitness]
            versus = [(name, comps.get((c.finalist.key, c.setup.label, key))) for key, name in controls]
            versus = [(n, v) for n, v in versus if v is not None] or [("", None)]
            for name, v in versus:
                w.writerow(base + ([name, f"{v.diff:.4f}", f"{v.p:.6f}", f"{v.p_holm:.6f}", v.wins, v.ties,
                                    v.losses] if v is not None else [""] * 7))


def plot_curves(cells: Sequence[Cell], label: str, path: str | Path, top: int = 3) -> None:
    """Mean validation curves of the top finalists against the controls in one setup."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [c for c in cells if c.setup.label == label]
    chosen = [c for c in chosen if c.finalist.control] + [c for c in chosen if not c.finalist.control][:top]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c in chosen:
        curve = c.val_curve()
        ax.plot(range(1, len(curve) + 1), curve, lw=2.2 if c.finalist.control else 1.4,
                linestyle="--" if c.finalist.control else "-", label=c.finalist.name[:60])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (mean over seeds)")
    ax.set_title(f"{label}: {chosen[0].setup.description}"[:90], fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
