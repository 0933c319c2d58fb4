"""The generalization funnel (Backprop Evolution §3, Table 1), with controls and statistics: setups, per-row lr
tuning, the re-training plan, paired comparisons, the table and its files, its records in MLflow, and the pooling of
several searches' finalists."""
from __future__ import annotations

from gp_backprop.funnel.outputs import curves_name, save
from gp_backprop.funnel.plan import Cell, Finalist, Job, Summary, job_task, plan, run
from gp_backprop.funnel.pool import check_pool, find_searches
from gp_backprop.funnel.records import CONTROLS, controls, finalists, log_funnel, read_funnel, rows
from gp_backprop.funnel.setups import Setup, SetupError, fresh_seeds, input_info, setups, task_from_params, transfer
from gp_backprop.funnel.stats import ALPHA, Comparison, holm, paired_interval, paired_t
from gp_backprop.funnel.table import compare, legend, marked, plot_curves, table, write_csv
from gp_backprop.funnel.tune import tune_rows

__all__ = ["ALPHA", "CONTROLS", "Cell", "Comparison", "Finalist", "Job", "Setup", "SetupError", "Summary",
           "check_pool", "compare", "controls", "curves_name", "finalists", "find_searches", "fresh_seeds", "holm",
           "input_info", "job_task", "legend", "log_funnel", "marked", "paired_interval", "paired_t", "plan",
           "plot_curves", "read_funnel", "rows", "run", "save", "setups", "table", "task_from_params", "transfer",
           "tune_rows", "write_csv"]
