"""The campaign's last stage, made again on every run since it trains nothing: the results folder with its
``README.md``, the re-test tables (markdown, CSV, tuning tables, learning curves, copied from the campaign's folder)
and the campaign's plots, everything read from the stages' results and MLflow."""
from __future__ import annotations

import shutil
from typing import Any

from gp_backprop.campaign.plots import plot_differences, plot_searches
from gp_backprop.campaign.readme import Facts, SearchFacts, markdown
from gp_backprop.campaign.reading import rule_numbers
from gp_backprop.campaign.spec import Campaign
from gp_backprop.campaign.state import CampaignFolder
from gp_backprop.funnel import Cell, curves_name
from gp_backprop.tracking import search_rows

__all__ = ["write_report"]


def write_report(campaign: Campaign, folder: CampaignFolder, state: dict[str, Any], mc: Any,
                 records: list[dict[str, Any]], stages: dict[str, list[Cell]]) -> str:
    """Write the results folder and return its README's text."""
    out = campaign.out
    out.mkdir(parents=True, exist_ok=True)
    searches, series, reference = [], [], None
    name = campaign.searches[0].space.reference
    for rec in records:
        rows, ref, fitness, _ = search_rows(mc, mc.get_run(rec["run_id"]), 1)
        ref_fitness = ref.score if ref is not None else float("nan")
        searches.append(SearchFacts(rec["name"], rec["seed"], rec["evaluations"], rows[0].score if rows else 0.0,
                                    ref_fitness, rec["run_id"]))
        series.append((f"{rec['name']} (seed {rec['seed']})", fitness))
        reference = reference or ((name, ref_fitness) if ref is not None else None)
    plot_searches(series, reference, out / "searches.png")
    seconds = sum(r["elapsed"] for r in records)
    plots: dict[str, list[str]] = {}
    for stage, cells in stages.items():
        shutil.copytree(folder.stage_dir(stage), out / stage, dirs_exist_ok=True)
        numbers = rule_numbers(cells)
        plot_differences(cells, out / f"differences_{stage}.png", numbers)
        labels = dict.fromkeys(c.setup.label for c in cells)
        plots[stage] = [f"differences_{stage}.png"] + [f"{stage}/{curves_name(label)}" for label in labels]
        seconds += (folder.done(stage) or {}).get("seconds", 0.0)
    facts = Facts(searches, reference, stages, seconds, state["sessions"], state["run_id"], plots)
    text = markdown(campaign, facts)
    (out / "README.md").write_text(text, encoding="utf-8")
    return text

