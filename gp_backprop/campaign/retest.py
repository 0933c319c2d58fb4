"""The campaign's re-test stages, the funnel and the transfer: the searches' pooled top distinct functions and the
controls, each at its own tuned lr, trained on fresh seeds in the stage's setups (``funnel.tune_rows``, ``plan``,
``run``), saved in the campaign's folder before they are logged under the campaign's MLflow run.

A stage killed while training starts again (the rows' lr tuning is cached on disk, per row); one killed after its
results were saved only logs them."""
from __future__ import annotations

import time
from typing import Any

from tqdm import tqdm

from gp_backprop import funnel
from gp_backprop.campaign.records import clear_stage
from gp_backprop.campaign.spec import Campaign
from gp_backprop.campaign.state import CampaignFolder
from gp_backprop.funnel import Cell, Finalist, Setup
from gp_backprop.parallel import make_backend
from gp_backprop.search.reference import tuning_folder

__all__ = ["STAGES", "retest", "rows", "stage_setups"]

STAGES = ("funnel", "transfer")


def stage_setups(campaign: Campaign, stage: str) -> list[Setup]:
    """The funnel's setups (A1, A2, ... derived from the search's task), or the transfer's (the campaign file's)."""
    task = campaign.searches[0].task
    if stage == "funnel":
        return funnel.setups(task, campaign.funnel.setups, [task.optimizer], *funnel.input_info(task))
    return [Setup(t.label, t.task.optimizer, t.description, t.task) for t in campaign.transfer]


def rows(mc: Any, campaign: Campaign, searches: list[Any]) -> list[Finalist]:
    """The controls, then the pooled top distinct functions of the searches (the same rows in every stage)."""
    return funnel.rows(mc, searches, campaign.funnel.top, campaign.funnel.controls)


def retest(stage: str, campaign: Campaign, folder: CampaignFolder, mc: Any, run: Any, searches: list[Any],
           progress: bool) -> list[Cell]:
    """The stage's cells: read back if it finished, logged if it was trained but not logged, else trained."""
    saved = folder.cells(stage)
    if saved is not None and folder.done(stage) is not None:
        print(f"{stage}: done ({len(saved[0])} cells, run {folder.done(stage)['run_id']})")
        return saved[0]
    setups = stage_setups(campaign, stage)
    if saved is None:
        start = time.monotonic()
        cells = _train(stage, campaign, folder, mc, searches, setups, progress)
        saved = (cells, time.monotonic() - start)
        folder.save_cells(stage, *saved)
    cells, seconds = saved
    seeds = funnel.fresh_seeds(campaign.searches[0].task, campaign.funnel.seeds)
    print(f"\n{stage}: {funnel.legend(len(seeds))}\n\n{funnel.table(cells)}\n")
    clear_stage(mc, run, stage)
    options = {"stage": stage, "setups": ",".join(s.label for s in setups), "seeds": " ".join(map(str, seeds)),
               "top": str(campaign.funnel.top), "search_run": ",".join(s.info.run_id for s in searches)}
    run_id = funnel.log_funnel(mc, run, cells, options, folder.stage_dir(stage))
    folder.finish(stage, {"run_id": run_id, "seconds": seconds})
    return cells


def _train(stage: str, campaign: Campaign, folder: CampaignFolder, mc: Any, searches: list[Any],
           setups: list[Setup], progress: bool) -> list[Cell]:
    cfg, plan = campaign.searches[0], campaign.funnel
    chosen = rows(mc, campaign, searches)
    seeds = funnel.fresh_seeds(cfg.task, plan.seeds)
    center = float(searches[0].data.params.get("fitness.tuned_lr", cfg.task.lr))
    grid = (plan.tune_points or cfg.fitness.tune_points, cfg.fitness.tune_factor, cfg.fitness.tune_seeds)
    print(f"{stage}: {sum(not r.control for r in chosen)} pooled finalists + "
          f"{', '.join(r.control for r in chosen if r.control)}; setups {', '.join(s.label for s in setups)}; "
          f"fresh seeds {seeds}", flush=True)
    p = cfg.parallel
    backend = make_backend(p.backend, cfg.evaluation.function, cfg.task, workers=plan.workers, timeout=plan.timeout,
                           scheduler=p.scheduler, members=p.chunk)
    try:
        backend.start()
        factors, tables = {}, {}
        if plan.tune:
            with tqdm(unit="run", desc=f"{stage} tuning", disable=not progress, dynamic_ncols=True) as bar:
                factors, tables = funnel.tune_rows(chosen, setups, cfg.task, center, backend, grid,
                                                   tuning_folder(cfg), on_done=lambda n, t: bar.update(1))
        cells, jobs = funnel.plan(chosen, setups, seeds, factors)
        with tqdm(total=len(jobs), unit="run", desc=f"{stage} re-tests", disable=not progress,
                  dynamic_ncols=True) as bar:
            funnel.run(cells, jobs, backend, on_done=lambda n, total: bar.update(1))
    finally:
        backend.close()
    funnel.save(folder.stage_dir(stage), cells, setups, tables, chosen)
    return cells
