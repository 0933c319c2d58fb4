"""A campaign's ``README.md``, as plain text from its numbers: the searches, each re-test table with its generated
reading, every rule's equation (LaTeX and words) and learning rates, and how to recreate it (the command, its wall
time, the commit it ran on)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import primitives as P

from gp_backprop import funnel
from gp_backprop.campaign.reading import reading, rule_numbers
from gp_backprop.campaign.spec import Campaign
from gp_backprop.funnel import Cell
from gp_backprop.render import duration

__all__ = ["Facts", "SearchFacts", "markdown"]

TITLES = {"funnel": "The funnel: the pooled top rules against the controls",
          "transfer": "Transfer: setups the searches never saw"}


@dataclass(frozen=True)
class SearchFacts:
    name: str
    seed: int
    evaluations: int
    best: float                 # the search's best fitness
    reference: float            # its reference seed's fitness
    run_id: str


@dataclass
class Facts:
    """What the README states, gathered by ``report``."""

    searches: list[SearchFacts]
    reference: tuple[str, float] | None       # the reference seed's name and search fitness
    stages: dict[str, list[Cell]]
    seconds: float                            # the stages' wall time, over all sessions
    sessions: list[dict]                      # {"started", "commit", "dirty"} per session
    run_id: str
    plots: dict[str, list[str]] = field(default_factory=dict)   # stage -> its plot files, relative to the README


def markdown(campaign: Campaign, facts: Facts) -> str:
    out = [f"# Campaign `{campaign.name}`", ""]
    if campaign.description:
        out += [campaign.description.strip(), ""]
    out += _provenance(campaign, facts) + _searches(campaign, facts)
    for stage, cells in facts.stages.items():
        out += _stage(stage, cells, facts, campaign)
    cells = next(iter(facts.stages.values()), [])
    out += _rules(cells, [c for cs in facts.stages.values() for c in cs])
    return "\n".join(out).rstrip() + "\n"


def _provenance(campaign: Campaign, facts: Facts) -> list[str]:
    commits = list(dict.fromkeys((s["commit"], s["dirty"]) for s in facts.sessions))
    ran = ", then ".join(f"`{sha[:12]}`" + (" (with uncommitted changes)" if dirty else "") for sha, dirty in commits)
    return [f"Recreate it with `python -m gp_backprop.campaign {campaign.path}` (add `--resume` to continue a "
            f"stopped one). Its stages took {duration(facts.seconds)} of wall time on the machine it ran on, over "
            f"{len(facts.sessions)} session(s), on commit {ran}. Every run is in MLflow: experiment "
            f"`{campaign.experiment}`, campaign run `{facts.run_id}`.", ""]


def _searches(campaign: Campaign, facts: Facts) -> list[str]:
    s = campaign.searches[0]
    out = ["## Searches", "",
           f"{len(facts.searches)} searches (preset `{campaign.search.preset}`, {s.task.dataset}, "
           f"{s.task.model.arch} {','.join(map(str, s.task.model.widths))}, {s.task.epochs} epochs), one per "
           "controller seed; fitness is validation accuracy as the search's protocol measures it.", "",
           "| search | seed | candidates | best fitness | reference fitness | MLflow run |",
           "|---|---|---|---|---|---|"]
    for f in facts.searches:
        out.append(f"| {f.name} | {f.seed} | {f.evaluations} | {f.best:.4f} | {f.reference:.4f} | `{f.run_id}` |")
    return out + ["", "![best fitness against candidates, per search](searches.png)", ""]


def _stage(stage: str, cells: list[Cell], facts: Facts, campaign: Campaign) -> list[str]:
    seeds = len(cells[0].results) if cells else 0
    setups = list(dict.fromkeys((c.setup.label, c.setup.description) for c in cells))
    out = [f"## {TITLES.get(stage, stage)}", "", "Setups:", ""]
    out += [f"- **{label}**: {text}" for label, text in setups]
    out += ["", funnel.legend(seeds) + ".", "", funnel.table(cells, markdown=True), "", "What it says:", ""]
    out += [f"- {line}" for line in reading(cells, facts.reference if stage == "funnel" else None)]
    out += [""] + [f"![{name}]({name})" for name in facts.plots.get(stage, [])] + [""]
    return out


def _rules(cells: Sequence[Cell], every: Sequence[Cell]) -> list[str]:
    """Each row once: number, text, LaTeX, words, and the lr it trained at on each dataset."""
    numbers = rule_numbers(cells)
    lrs: dict[str, dict[str, float]] = {}
    for c in every:
        lrs.setdefault(c.finalist.key, {})[c.setup.task.dataset] = funnel.job_task(c, 0).lr
    out = ["## The rules", "", "Each row trained at its own learning rate, tuned on validation per dataset "
           "(the search's grid around the search's tuned lr).", ""]
    seen: set[str] = set()
    for c in cells:
        f = c.finalist
        if f.key in seen:
            continue
        seen.add(f.key)
        head = f"{f.control} (control)" if f.control else f"Rule {numbers[f.key]}"
        lr = ", ".join(f"{lr:.4g} on {d}" for d, lr in lrs.get(f.key, {}).items())
        fitness = "" if f.control else f", search fitness {f.fitness:.4f}"
        out.append(f"- **{head}**: `{f.equation}`, ${f.latex}$; in words: {_words(f.equation)}; lr {lr}{fitness}.")
    return out + [""]


def _words(text: str) -> str:
    return P.words(P.parse(text, P.default_pset(True)))
