"""Which task should the default search use? For each candidate task (a preset's search task), print

  (a) resolution: how many accuracy points one validation example is worth;
  (b) backprop at the search's lr against the best lr of a factor-2 log grid around it (mean validation accuracy
      over seeds, and the spread over seeds): a large gap is one a rule can close by rescaling g alone;
  (c) time per candidate: one search training of the backprop seed (hurdle and all), median and range of repeats,
      interleaved across tasks, and each task's ratio to the first;
  (d) for mnist1d, the MLP width: each width's best lr on the same grid, its accuracy and its time.

    python benchmarks/task_choice.py [--seeds 3] [--grid 7] [--repeats 5] [--threads 1] [--widths 64,100,256]

Tasks: the default preset (digits), the mnist1d preset, and mnist1d with the default preset's other settings.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from evaluators import EvalResult, TaskSpec, evaluate, load
from gp_backprop.config import build
from gp_backprop.presets import PRESETS
from primitives import SEEDS

BACKPROP = SEEDS["backprop"]


def tasks() -> dict[str, TaskSpec]:
    default = build([("preset default", PRESETS["default"])]).task
    return {
        "digits (preset default)": default,
        "mnist1d (preset mnist1d)": build([("preset mnist1d", PRESETS["mnist1d"])]).task,
        "mnist1d, default settings": default.with_(dataset="mnist1d"),
    }


def describe(task: TaskSpec) -> str:
    widths = "-".join(map(str, task.model.widths))
    return f"MLP {widths}, {task.optimizer} lr {task.lr:g}, batch {task.batch_size}, {task.epochs} epochs"


def resolution(label: str, task: TaskSpec) -> None:
    s = load(task.dataset, seed=task.split_seed)
    print(f"  {label:<28} {len(s.train):>5} train {len(s.val):>5} val {len(s.test):>5} test   "
          f"1 val example = {100 / len(s.val):.3f} points")


def lr_grid(task: TaskSpec, seeds: int, grid: int) -> dict[float, list[EvalResult]]:
    """Backprop over seeds for each lr of task.lr x 2^k, k centred on 0."""
    full = task.with_(hurdle_epoch=0)  # the tuned reference trains in full, as the funnel does
    lrs = [task.lr * 2.0 ** (k - grid // 2) for k in range(grid)]
    return {lr: [evaluate(BACKPROP, full.with_(lr=lr, seed=s)) for s in range(seeds)] for lr in lrs}


def val_accs(results: list[EvalResult]) -> list[float]:
    return [r.val_acc for r in results]


def lr_gap(label: str, task: TaskSpec, seeds: int, grid: int) -> None:
    rows = {lr: (statistics.fmean(a), statistics.stdev(a) if seeds > 1 else 0.0, min(a), max(a))
            for lr, a in ((lr, val_accs(rs)) for lr, rs in lr_grid(task, seeds, grid).items())}
    best = max(rows, key=lambda lr: rows[lr][0])
    print(f"  {label} ({describe(task)}), {seeds} seeds:")
    for lr, (mean, sd, lo, hi) in rows.items():
        mark = " <- search lr" if lr == task.lr else ""
        mark += " <- best" if lr == best else ""
        print(f"    lr {lr:<8.4g} val acc {mean:.4f} ± {sd:.4f}  (range {lo:.4f}-{hi:.4f}){mark}")
    gap, sd = rows[best][0] - rows[task.lr][0], rows[task.lr][1]
    print(f"    gap best - search lr: {gap * 100:+.2f} points = {gap / sd if sd else float('inf'):.1f} seed stds "
          f"at the search lr")


def widths_choice(task: TaskSpec, widths: list[int], seeds: int, grid: int) -> None:
    """Each width's best lr on the grid, its mean val acc and the median time of its trainings."""
    for w in widths:
        results = lr_grid(task.with_(model_widths=(w, w)), seeds, grid)
        best = max(results, key=lambda lr: statistics.fmean(val_accs(results[lr])))
        accs = val_accs(results[best])
        times = [r.wall_time for rs in results.values() for r in rs]
        sd = statistics.stdev(accs) if seeds > 1 else 0.0
        print(f"  MLP {w}-{w}: best lr {best:g}, val acc {statistics.fmean(accs):.4f} ± {sd:.4f}; a training takes "
              f"{statistics.median(times) * 1e3:.0f} ms (median over the grid, range {min(times) * 1e3:.0f}-"
              f"{max(times) * 1e3:.0f})")


def candidate_times(all_tasks: dict[str, TaskSpec], repeats: int) -> None:
    for task in all_tasks.values():
        evaluate(BACKPROP, task)  # warm-up: data loaded and cached, code paths compiled
    times: dict[str, list[float]] = {label: [] for label in all_tasks}
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits every task alike
        for label, task in all_tasks.items():
            start = time.perf_counter()
            r = evaluate(BACKPROP, task)
            times[label].append(time.perf_counter() - start)
            assert r.status == "ok", r.message
    first = next(iter(times.values()))
    for label, t in times.items():
        ratios = [a / b for a, b in zip(t, first)]
        print(f"  {label:<28} median {statistics.median(t) * 1e3:7.1f} ms  (range {min(t) * 1e3:.1f}-"
              f"{max(t) * 1e3:.1f})   ratio to the first: median {statistics.median(ratios):.2f} "
              f"(range {min(ratios):.2f}-{max(ratios):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per lr (default 3)")
    ap.add_argument("--grid", type=int, default=7, help="lrs: search lr x 2^k, k centred on 0 (default 7)")
    ap.add_argument("--repeats", type=int, default=5, help="timed trainings per task (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (search workers use 1)")
    ap.add_argument("--widths", default="64,100,256", help="(d) mnist1d MLP widths to compare (default 64,100,256)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    all_tasks = tasks()
    print(f"torch {torch.__version__}, {args.threads} thread(s); validation accuracy of the backprop seed")
    print("\n(a) resolution")
    for label, task in all_tasks.items():
        resolution(label, task)
    print(f"\n(b) backprop at the search lr vs the best of a factor-2 grid of {args.grid} lrs")
    for label, task in all_tasks.items():
        lr_gap(label, task, args.seeds, args.grid)
    print(f"\n(c) time per candidate: one search training (backprop seed), {args.repeats} interleaved repeats")
    candidate_times(all_tasks, args.repeats)
    print(f"\n(d) mnist1d: MLP width, each at its best lr of the same grid around the preset's, {args.seeds} seeds")
    widths_choice(all_tasks["mnist1d (preset mnist1d)"], [int(w) for w in args.widths.split(",")], args.seeds,
                  args.grid)


if __name__ == "__main__":
    main()
