"""A campaign from start to end, resumably: the searches, the funnel of their pooled top rules, the transfer setups,
then the report. Each stage's result is kept in the campaign's folder and the stage is skipped when it is there; the
campaign's MLflow run holds every run it makes."""
from __future__ import annotations

from collections.abc import Sequence

from gp_backprop.campaign.records import end_run, open_run
from gp_backprop.campaign.report import write_report
from gp_backprop.campaign.retest import STAGES, retest
from gp_backprop.campaign.searches import Stopped, run_searches
from gp_backprop.campaign.spec import Campaign
from gp_backprop.campaign.state import CampaignFolder

__all__ = ["run_campaign"]


def run_campaign(campaign: Campaign, *, resume: bool = False, overwrite: bool = False, redo: Sequence[str] = (),
                 progress: bool = True) -> str:
    """Run what is left of ``campaign`` (the re-test stages in ``redo`` again) and write its results folder; returns
    the README's text. Raises ``ConfigError`` (and the search's and tracking's one-line errors) for what the user
    must fix, ``Stopped`` when a signal stopped a search, ``SearchBusy`` when another process runs the campaign."""
    folder = CampaignFolder(campaign.folder, campaign.name)
    with folder.lock:
        state = folder.start(campaign.plan, resume, overwrite, campaign.path, redo)
        cfg = campaign.searches[0]
        mc, run = open_run(cfg.tracking.uri, cfg.tracking.artifacts, campaign.name, campaign.experiment,
                           state["run_id"], campaign.plan)
        state["run_id"] = run.info.run_id
        folder.save(state)
        try:
            records = run_searches(campaign, folder, mc, run, resume, overwrite, progress)
            searches = [mc.get_run(r["run_id"]) for r in records]
            stages = {stage: retest(stage, campaign, folder, mc, run, searches, progress) for stage in STAGES
                      if stage == "funnel" or campaign.transfer}
            text = write_report(campaign, folder, state, mc, records, stages)
        except BaseException as exc:
            interrupted = isinstance(exc, (KeyboardInterrupt, Stopped))
            try:
                end_run(mc, run, "KILLED" if interrupted else "FAILED")
            except Exception:  # noqa: BLE001 - the store may be what failed; the first error is the one to report
                pass
            raise
        state["status"] = "finished"
        folder.save(state)
        end_run(mc, run, "FINISHED", text, campaign.out)
        return text
