"""The generalization funnel (Backprop Evolution §3, Table 1): setups, the re-training plan, its table, and its
records in MLflow."""
from __future__ import annotations

from gp_backprop.funnel.plan import Cell, Finalist, Job, Summary, plan, run
from gp_backprop.funnel.records import finalists, log_funnel, read_funnel
from gp_backprop.funnel.setups import Setup, SetupError, fresh_seeds, input_info, setups, task_from_params
from gp_backprop.funnel.table import BOLD_MARGIN, marked, plot_curves, table, write_csv

__all__ = ["BOLD_MARGIN", "Cell", "Finalist", "Job", "Setup", "SetupError", "Summary", "finalists", "fresh_seeds",
           "input_info", "log_funnel", "marked", "plan", "plot_curves", "read_funnel", "run", "setups", "table",
           "task_from_params", "write_csv"]
