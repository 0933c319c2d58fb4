"""The search's parent run description (its ``mlflow.note.content``, markdown the MLflow UI shows on the run page):
the counts and time, the best equation against the reference seed, links to both runs, and the top child runs with
each rule once."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gp_backprop.render import duration
from gp_backprop.tracking.runs import run_link

__all__ = ["describe_search"]

TOP = 5   # child runs linked from the description


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(rows: Sequence[Any], reference: Any, reference_name: str, link: Callable[[Any], str]) -> list[str]:
    """The top rows and the reference's after them, unless it is one of them: each rule once."""
    lines = [f"| rank | run | fitness (val acc) | lr | test acc | vs {reference_name} |", "|---|---|---|---|---|---|"]
    shown = list(rows[:TOP])
    if reference is not None and all(r.key != reference.key for r in shown):
        shown.append(reference)
    for r in shown:
        if reference is None:
            delta = "n/a"
        elif r.key == reference.key:
            delta = "reference"
        else:
            delta = f"{r.score - reference.score:+.4f}"
        lines.append(f"| {r.rank} | {link(r)} | {r.shown()} | {r.lr:g} | {r.test_acc:.4f} | {delta} |")
    return lines


def describe_search(name: str, experiment_id: str, rows: Sequence[Any], reference: Any, facts: dict[str, Any],
                    runs: Mapping[str, tuple[str, str]], reference_name: str) -> str:
    """Markdown for the parent run. ``rows``: hall-of-fame rows, best first; ``reference``: the reference seed's row
    or None; ``facts``: status, evaluations, cache_hits, elapsed (seconds); ``runs``: gp.key -> (run id, run name).
    Links go to the runs' pages."""
    def label(row: Any) -> str:
        if reference is not None and row.key == reference.key:
            return f"{reference_name} (reference)"
        return runs.get(row.key, ("", ""))[1] or f"#{row.evaluation} {row.equation}"

    def link(row: Any) -> str:
        rid = runs.get(row.key, ("", ""))[0]
        text = _cell(label(row)[:80])
        return f"[{text}]({run_link(experiment_id, rid)})" if rid else text

    # The run page shows the first lines and hides the rest behind "Show more": the best and reference runs first.
    lines = [f"**Search `{name}`**: {facts.get('status', 'running')} after {facts.get('evaluations', 0):,} "
             f"evaluations (+{facts.get('cache_hits', 0):,} cache hits) in {duration(facts.get('elapsed', 0.0))}.", ""]
    if rows:
        best = rows[0]
        vs = (f" against {reference_name}'s **{reference.shown()}** ({best.score - reference.score:+.4f})"
              if reference is not None else "")
        lines += [f"Best run: {link(best)}: `{best.equation}`, fitness **{best.shown()}**{vs}.", ""]
        if reference is not None:
            lines += [f"Reference run: {link(reference)}: `{reference.equation}`, rank {reference.rank}.", ""]
    lines += ["Fitness is validation accuracy at the best lr of a grid around the tuned lr; mean ± std (seeds) for "
              "candidates retrained on more seeds before entering the top N.", ""]
    if rows:
        lines += _table(rows, reference, reference_name, link)
    lines += ["", "Artifacts: `hall_of_fame.png` (the equations in LaTeX), `hall_of_fame.csv`, `fitness.png`."]
    return "\n".join(lines)
