"""The generalization funnel (Backprop Evolution §3, Table 1), with controls and statistics: setups, per-row lr
tuning, the re-training plan, paired comparisons, the table, and its records in MLflow."""
from __future__ import annotations

from gp_backprop.funnel.plan import Cell, Finalist, Job, Summary, job_task, plan, run
from gp_backprop.funnel.records import CONTROLS, controls, finalists, log_funnel, read_funnel
from gp_backprop.funnel.setups import Setup, SetupError, fresh_seeds, input_info, setups, task_from_params, transfer
from gp_backprop.funnel.stats import ALPHA, Comparison, holm, paired_t
from gp_backprop.funnel.table import compare, legend, marked, plot_curves, table, write_csv
from gp_backprop.funnel.tune import tune_rows

__all__ = ["ALPHA", "CONTROLS", "Cell", "Comparison", "Finalist", "Job", "Setup", "SetupError", "Summary", "compare",
           "controls", "finalists", "fresh_seeds", "holm", "input_info", "job_task", "legend", "log_funnel", "marked",
           "paired_t", "plan", "plot_curves", "read_funnel", "run", "setups", "table", "task_from_params",
           "transfer", "tune_rows", "write_csv"]
