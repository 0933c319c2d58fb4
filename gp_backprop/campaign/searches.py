"""The campaign's first stage: its searches, one per search seed, each a normal search (``run_search``) nested under
the campaign's MLflow run. A finished search is skipped; a stopped one continues through the search's own
``--resume`` machinery (its checkpoint and journal), so a kill loses no finished candidate."""
from __future__ import annotations

import dataclasses
from typing import Any

from gp_backprop.campaign.records import clear_search
from gp_backprop.campaign.spec import Campaign
from gp_backprop.campaign.state import CampaignFolder
from gp_backprop.config import ConfigError, SearchConfig
from gp_backprop.search import RunFolder, print_summary, run_search

__all__ = ["Stopped", "run_searches", "search_stage"]

ENDED = ("finished", "time budget", "exhausted")   # a search that spent its budget; anything else stops the campaign


class Stopped(Exception):
    """A search was stopped by a signal (Ctrl-C, SIGTERM): the campaign stops too; ``--resume`` continues it."""

    def __init__(self, name: str, signum: int) -> None:
        super().__init__(name)
        self.name, self.signum = name, signum


def search_stage(cfg: SearchConfig) -> str:
    return f"search-s{cfg.seed}"


def run_searches(campaign: Campaign, folder: CampaignFolder, mc: Any, run: Any, resume: bool, overwrite: bool,
                 progress: bool) -> list[dict[str, Any]]:
    """Each search's record (``run_id``, ``status``, ``evaluations``, ``elapsed``), running those not finished
    with their parent runs nested under the campaign's ``run``."""
    out = []
    for cfg in campaign.searches:
        done = folder.done(search_stage(cfg))
        if done is None:
            nested = dataclasses.replace(cfg, tracking=dataclasses.replace(cfg.tracking, parent_run=run.info.run_id))
            done = _search(nested, mc, run, resume, overwrite, progress)
            folder.finish(search_stage(cfg), done)
        else:
            print(f"search {cfg.name}: done ({done['evaluations']} candidates, run {done['run_id']})")
        out.append(done)
    return out


def _search(cfg: SearchConfig, mc: Any, run: Any, resume: bool, overwrite: bool, progress: bool) -> dict[str, Any]:
    started = RunFolder(cfg.run_dir).exists()   # it ran before: continue it as evolve --resume does
    if started and not resume and not overwrite:
        raise ConfigError(f"search {cfg.name} has a checkpoint at {cfg.run_dir}; add --resume to continue the "
                          "campaign, or --overwrite to start it again")
    if not started or overwrite:
        clear_search(mc, run, cfg.name)
    print(f"search {cfg.name}: {'continuing' if started and resume else 'starting'} (seed {cfg.seed}, "
          f"{cfg.budget.max_evals} candidates)", flush=True)
    outcome = run_search(cfg, resume=started and resume, overwrite=overwrite, progress=progress)
    print_summary(cfg, outcome)
    if outcome.status == "interrupted":
        raise Stopped(cfg.name, outcome.signum)
    if outcome.status not in ENDED:
        raise ConfigError(f"search {cfg.name} ended with status {outcome.status!r} ({outcome.message}); fix it "
                          "(see the lines above), then continue the campaign with --resume")
    if outcome.runs_waiting:
        raise ConfigError(f"search {cfg.name}: {outcome.runs_waiting} of its runs did not reach MLflow, which the "
                          "funnel reads; continue the campaign with --resume once the store answers")
    return {"name": cfg.name, "seed": cfg.seed, "run_id": outcome.run_id, "status": outcome.status,
            "evaluations": len(outcome.controller.population), "elapsed": outcome.elapsed}
