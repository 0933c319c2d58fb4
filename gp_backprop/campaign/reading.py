"""A factual reading of a re-test table, generated from its statistics alone: what beats what in each setup, at which
Holm-corrected p, what is worse, which rows did not train on every seed, and what did not hold up (a search's win
that the fresh seeds do not confirm). No sentence is written by hand, so the reading cannot say more than the
numbers."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from gp_backprop.funnel import ALPHA, Cell, Comparison, Summary, compare

__all__ = ["reading", "rule_numbers"]


def _p(c: Comparison) -> str:
    return "p < 0.001" if c.p_holm < 0.001 else f"p = {c.p_holm:.3f}"


def _vs(c: Comparison, name: str) -> str:
    return f"{c.diff:+.2f} points against {name} ({_p(c)})"


def rule_numbers(cells: Sequence[Cell]) -> dict[str, int]:
    """Each finalist's number in the table (1, 2, ...: its place in the pooled ranking), by key."""
    keys = [c.finalist.key for c in cells if not c.finalist.control]
    return {k: i for i, k in enumerate(dict.fromkeys(keys), 1)}


def _all(n: int) -> str:
    return "both controls" if n == 2 else "every control" if n > 2 else "the control"


def reading(cells: Sequence[Cell], reference: tuple[str, float] | None = None) -> list[str]:
    """Sentences, one per fact. ``reference``: the search's reference (name, search fitness), for the sentence on
    what held up of the searches' wins (made for the first setup)."""
    sums = [Summary.of(c) for c in cells]
    comps = compare(sums)
    controls = {s.finalist.key: s.finalist.name for s in sums if s.finalist.control}
    number = rule_numbers(cells)
    labels = list(dict.fromkeys(s.label for s in sums))
    n = len(controls)
    out: list[str] = []
    winners: dict[int, list[str]] = {}
    for label in labels:
        lines = _setup(label, sums, comps, controls, number, winners)
        out += lines[:1] + _untrained(label, cells, number) + lines[1:]
    if not winners:
        out.append(f"No rule beats {_all(n)} at p < {ALPHA} after Holm's correction in any of these setups "
                   f"({', '.join(labels)}).")
    for rule, where in sorted(winners.items()):
        rest = [label for label in labels if label not in where]
        out.append(f"Rule {rule} beats {_all(n)} in {', '.join(where)}" +
                   (f", but not in {', '.join(rest)}." if rest else ", in every setup."))
    if reference is not None and labels:
        out.append(_held_up(cells, comps, labels[0], reference, number))
    return out


def _setup(label: str, sums: list[Summary], comps: dict, controls: dict[str, str], number: dict[str, int],
           winners: dict[int, list[str]]) -> list[str]:
    block = [s for s in sums if s.label == label]
    seeds = max((len(s.accs) for s in block), default=0)
    scored = ", ".join(f"{s.finalist.name} {s.mean:.2f} ± {s.std:.2f}" for s in block if s.finalist.control)
    out = [f"{label}: the controls scored {scored} (test accuracy %, mean ± std over {seeds} fresh seeds)."]
    for (key, lab, ckey), c in comps.items():   # controls compared with each other, where the table does so
        if lab == label and key in controls:
            out.append(f"{label}: {controls[key]} scored {_vs(c, controls[ckey])}.")
    marked = False
    for s in block:
        if s.finalist.control:
            continue
        mine = {ck: c for (k, lab, ck), c in comps.items() if k == s.finalist.key and lab == label}
        won = [ck for ck, c in mine.items() if c.significant_win]
        lost = [ck for ck, c in mine.items() if c.diff < 0 and c.p_holm < ALPHA]
        rule = number[s.finalist.key]
        if mine and len(won) == len(mine):
            marked = True
            winners.setdefault(rule, []).append(label)
            out.append(f"{label}: rule {rule} beats {_all(len(mine))}: "
                       + "; ".join(_vs(mine[ck], controls[ck]) for ck in won) + ".")
        elif won:
            out.append(f"{label}: rule {rule} beats " + "; ".join(_vs(mine[ck], controls[ck]) for ck in won)
                       + ", but not " + "; ".join(_vs(c, controls[ck]) for ck, c in mine.items() if ck not in won)
                       + ".")
        if lost:
            out.append(f"{label}: rule {rule} is worse: " + "; ".join(_vs(mine[ck], controls[ck]) for ck in lost)
                       + ".")
    if not marked:
        out.append(f"{label}: no rule beats {_all(len(controls))} at p < {ALPHA} after Holm's correction.")
    return out


def _untrained(label: str, cells: Sequence[Cell], number: dict[str, int]) -> list[str]:
    """The rows of a setup that did not train on every seed, with their statuses: a 0.00 in the table is a row whose
    trainings did not finish at its lr (diverged, error, timeout, crashed), not a rule that learned nothing."""
    rows = []
    for c in cells:
        stopped = Counter(r.status for r in c.results if r.status != "ok")
        if c.setup.label == label and stopped:
            name = c.finalist.name if c.finalist.control else f"rule {number[c.finalist.key]}"
            counts = ", ".join(f"{status} on {n}" for status, n in sorted(stopped.items()))
            rows.append(f"{name} ({counts} of {len(c.results)} seeds)")
    if not rows:
        return []
    return [f"{label}: did not train on every seed at the lr each row was tuned to on its dataset in the search's "
            f"setting (such a seed counts as 0 %): {'; '.join(rows)}."]


def _held_up(cells: Sequence[Cell], comps: dict, label: str, reference: tuple[str, float],
             number: dict[str, int]) -> str:
    """How many of the rules that beat the reference in the search beat it again on fresh seeds."""
    name, fitness = reference
    ref_key = next((c.finalist.key for c in cells if c.finalist.control and c.setup.label == label), None)
    above = [c.finalist for c in cells if not c.finalist.control and c.setup.label == label
             and c.finalist.fitness > fitness]
    confirmed = [f for f in above if ref_key and (f.key, label, ref_key) in comps
                 and comps[(f.key, label, ref_key)].significant_win]
    total = len(number)
    text = (f"In the searches, {len(above)} of the {total} rules scored above {name}'s search fitness "
            f"({fitness:.4f}); on fresh seeds in {label}, {len(confirmed)} of them beat it at p < {ALPHA}")
    if above and len(confirmed) < len(above):
        gone = [str(number[f.key]) for f in above if f not in confirmed]
        text += f" ({'rule' if len(gone) == 1 else 'rules'} {', '.join(gone)} did not hold up)"
    return text + "."
