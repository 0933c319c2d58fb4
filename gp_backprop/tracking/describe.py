"""The search's parent run description (its ``mlflow.note.content``, markdown the MLflow UI shows on the run page):
the best equation against the reference seed, the counts and time, and links to the top child runs."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gp_backprop.render import duration
from gp_backprop.tracking.runs import run_link

__all__ = ["describe_search"]

TOP = 5   # child runs linked from the description


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def describe_search(name: str, experiment_id: str, rows: Sequence[Any], reference: Any, facts: dict[str, Any],
                    runs: Mapping[str, tuple[str, str]], reference_name: str) -> str:
    """Markdown for the parent run. ``rows``: hall-of-fame rows, best first; ``reference``: the reference seed's row
    or None; ``facts``: status, evaluations, cache_hits, elapsed (seconds); ``runs``: gp.key -> (run id, run name)."""
    def link(row: Any, label: str) -> str:
        rid = runs.get(row.key, ("", ""))[0]
        return f"[{_cell(label)}]({run_link(experiment_id, rid)})" if rid else _cell(label)

    lines = [f"**Search `{name}`**: {facts.get('status', 'running')} after {facts.get('evaluations', 0):,} "
             f"evaluations (+{facts.get('cache_hits', 0):,} cache hits) in {duration(facts.get('elapsed', 0.0))}. "
             "Fitness is validation accuracy at the best lr of a grid around the tuned lr; mean ± std (seeds) for "
             "candidates retrained on more seeds before entering the top N.", ""]
    if rows:
        best = rows[0]
        vs = (f" against {reference_name}'s **{reference.shown()}** ({best.score - reference.score:+.4f})"
              if reference is not None else "")
        lines += [f"Best: `{best.equation}`, fitness **{best.shown()}**{vs}.", "",
                  f"| rank | run | fitness (val acc) | lr | test acc | vs {reference_name} |",
                  "|---|---|---|---|---|---|"]
        for r in rows[:TOP]:
            delta = f"{r.score - reference.score:+.4f}" if reference is not None else "n/a"
            label = runs.get(r.key, ("", f"#{r.evaluation} {r.equation}"))[1] or f"#{r.evaluation} {r.equation}"
            lines.append(f"| {r.rank} | {link(r, label[:80])} | {r.shown()} | {r.lr:g} | {r.test_acc:.4f} | "
                         f"{delta} |")
        if reference is not None:
            lines.append(f"| {reference.rank} | {link(reference, f'{reference_name} (reference)')} | "
                         f"{reference.shown()} | {reference.lr:g} | {reference.test_acc:.4f} | reference |")
    lines += ["", "Artifacts: `hall_of_fame.png` (the equations in LaTeX), `hall_of_fame.csv`, `fitness.png`."]
    return "\n".join(lines)
