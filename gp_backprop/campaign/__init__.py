"""Discovery campaigns (``python -m gp_backprop.campaign FILE``): several searches of one task, the funnel of their
pooled top rules against the controls, transfer setups fixed before the searches run, and a results folder with its
tables, plots and README; every stage resumable, every run under one MLflow parent."""
from __future__ import annotations

from gp_backprop.campaign.runner import run_campaign
from gp_backprop.campaign.spec import Campaign, load

__all__ = ["Campaign", "load", "run_campaign"]
