"""Multi-fidelity screening (issue 13, item 4): how much training early stops at several epochs save, and which good
candidates they lose, measured on one search trained without them.

    PYTHONPATH=. python benchmarks/screening.py record --max-evals 5000 --out /tmp/screen   # the search (long)
    PYTHONPATH=. python benchmarks/screening.py replay --out /tmp/screen                    # the table (seconds)

``record`` runs the preset's search with screening off (``fitness.screen_epochs = []``; the preset's fixed hurdle
stays) and every training's validation curve written down by ``recorded``/``recorded_many``, the evaluation
function it names (``evaluators.evaluate``/``evaluate_many`` plus a log line per training). ``replay`` walks the
candidates in the order the search finished them and applies each screening setting as the search would: before a
candidate, the thresholds from the top N so far (``Controller.screen``: at each screen epoch, the margin under the
lowest validation accuracy any top-N entry had there); each of its grid trainings stops at the first screen epoch it
is at or under. Saved: the epochs those stops skip, plus the extra-seed trainings of a candidate that the stops
keep out of the top N, over all epochs trained. Lost: candidates of the search's final top N (and top 10) whose
winning grid training a stop would have cut short, so that their score would have changed. The population is the
unscreened search's throughout (a screened search would differ after its first lost candidate), so the figures are
per candidate, not a second search.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from evaluators import EvalResult, TaskSpec, evaluate, evaluate_many

LOG_ENV = "GP_SCREEN_LOG"   # the folder each worker process writes its trainings to (one file per process)
SETTINGS = [((1, 2, 5, 10), m) for m in (0.0, 0.02, 0.05, 0.1)] + \
           [((2, 5, 10), m) for m in (0.02, 0.05, 0.1)] + [((5, 10), m) for m in (0.02, 0.05)] + [((10,), 0.05)]


def _log(text: str | None, task: TaskSpec, result: EvalResult) -> None:
    line = {"text": text, "lr": task.lr, "seed": task.seed, "status": result.status, "curve": list(result.val_curve)}
    with open(Path(os.environ[LOG_ENV]) / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def recorded(text: str, task: TaskSpec) -> EvalResult:
    """``evaluate``, and a line in the log folder with the training's curve."""
    result = evaluate(text, task)
    _log(text, task, result)
    return result


def recorded_many(members: Sequence[tuple[str | None, TaskSpec]], on_result=None) -> list[EvalResult]:
    """``evaluate_many``, and a line in the log folder for each member's curve."""
    def heard(i: int, result: EvalResult) -> None:
        _log(*members[i], result)
        if on_result is not None:
            on_result(i, result)
    return evaluate_many(members, on_result=heard)


def record(args: argparse.Namespace) -> None:
    from gp_backprop.config import build
    from gp_backprop.presets import PRESETS
    from gp_backprop.search import run_search

    out = Path(args.out)
    (out / "trainings").mkdir(parents=True, exist_ok=True)
    os.environ[LOG_ENV] = str(out / "trainings")
    overrides = {"name": "screening", "seed": args.seed, "budget": {"max_evals": args.max_evals},
                 "fitness": {"screen_epochs": []},
                 "evaluation": {"function": "benchmarks.screening:recorded"},
                 "parallel": {"backend": "loky", "workers": args.workers},
                 "tracking": {"enabled": False, "checkpoint_dir": str(out / "searches")}}
    cfg = build([(f"preset {args.preset}", {**PRESETS[args.preset], "preset": args.preset}), ("benchmark", overrides)])
    start = time.monotonic()
    outcome = run_search(cfg, overwrite=True, progress=args.progress)
    print(f"recorded {outcome.session_evals} candidates in {time.monotonic() - start:.0f} s "
          f"({outcome.status}); checkpoint {cfg.run_dir}")


def load(out: Path) -> tuple[dict, list[dict], dict]:
    snap = json.loads(next((out / "searches").glob("*/checkpoint.json")).read_text())
    curves: dict[tuple, list[float]] = {}
    for path in (out / "trainings").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            t = json.loads(line)
            curves[(t["text"], round(t["lr"], 12), t["seed"])] = t["curve"]
    return snap, snap["controller"]["population"], curves


def first_stop(curve: list[float], hurdles: dict[int, float]) -> int:
    """The epoch a training with this curve stops at under ``hurdles`` (epoch -> bar), or 0 if none stops it."""
    return next((e for e in sorted(hurdles) if len(curve) >= e and curve[e - 1] <= hurdles[e]), 0)


def thresholds(top: list[dict], epochs: tuple[int, ...], margin: float) -> dict[int, float]:
    """``Controller.screen`` on the top-N entries ``top`` (their winning training's curves)."""
    curves = [e["result"]["val_curve"] for e in top]
    return {ep: min(c[ep - 1] for c in long) - margin for ep in epochs
            if (long := [c for c in curves if len(c) >= ep])}


def fitness(entry: dict) -> float:
    return entry["score"]["mean"] if "score" in entry else 0.0


def replay_one(snap: dict, pop: list[dict], curves: dict, epochs: tuple[int, ...], margin: float) -> dict:
    cfg, lr = snap["config"], snap["lr"]
    n, last = cfg["space"]["population"], cfg["task"]["epochs"]
    seed, grid, extra = cfg["task"]["seed"], cfg["fitness"]["lr_grid"], cfg["fitness"]["extra_seeds"]
    epochs = tuple(e for e in epochs if e < last)
    ranked: list[dict] = []          # by the unscreened fitness, best first (ties: earlier first)
    total = saved = 0
    changed: set[int] = set()
    for entry in pop:
        text, cid = entry["cand"]["text"], entry["cand"]["cid"]
        bars = thresholds(ranked[:n], epochs, margin) if len(ranked) >= n else {}
        members = [curves[k] for f in grid if (k := (text, round(lr * f, 12), seed)) in curves]
        stops = [first_stop(c, bars) for c in members]
        total += sum(len(c) for c in members)
        saved += sum(len(c) - s for c, s in zip(members, stops) if s)
        chosen = entry.get("score", {}).get("lr", 0.0)
        win = curves.get((text, round(chosen, 12), seed))
        if win is not None and first_stop(win, bars):
            changed.add(cid)
        extras = [curves[k] for i in range(extra) if (k := (text, round(chosen, 12), seed + 1000 + i)) in curves]
        total += sum(len(c) for c in extras)
        if extras and any(stops):
            screened = max((c[s - 1] if s else (c[-1] if c else 0.0)) for c, s in zip(members, stops))
            if len(ranked) >= n and screened < fitness(ranked[n - 1]):
                saved += sum(len(c) for c in extras)   # the screened first score would not have been promoted
        at = next((i for i, other in enumerate(ranked) if fitness(other) < fitness(entry)), len(ranked))
        ranked.insert(at, entry)
    top_n = {e["cand"]["cid"] for e in ranked[:n]}
    top_10 = {e["cand"]["cid"] for e in ranked[:10]}
    return {"epochs": epochs, "margin": margin, "saved": saved / max(1, total), "changed": len(changed),
            "lost_n": len(changed & top_n), "lost_10": len(changed & top_10), "n": n,
            "lost_names": [e["cand"]["text"] for e in ranked[:10] if e["cand"]["cid"] in changed]}


def replay(args: argparse.Namespace) -> None:
    snap, pop, curves = load(Path(args.out))
    cfg = snap["config"]
    print(f"search: {len(pop)} candidates, {len(curves)} trainings recorded; task {cfg['task']['dataset']} "
          f"{cfg['task']['epochs']} epochs, fixed hurdle at epoch {cfg['task']['hurdle_epoch']}; lr grid "
          f"{cfg['fitness']['lr_grid']} x {snap['lr']}; top N = {cfg['space']['population']}")
    ranked = sorted(pop, key=lambda e: (-fitness(e), e["index"]))
    n = min(len(ranked), cfg["space"]["population"])
    print(f"final top 10 fitness {fitness(ranked[min(9, n - 1)]):.4f}-{fitness(ranked[0]):.4f}, top N bar "
          f"{fitness(ranked[n - 1]):.4f}\n")
    print(f"{'screen epochs':>14} {'margin':>7} {'epochs saved':>13} {'winners cut':>12} {'of top N':>9} "
          f"{'of top 10':>10}")
    for epochs, margin in SETTINGS:
        r = replay_one(snap, pop, curves, epochs, margin)
        print(f"{','.join(map(str, r['epochs'])):>14} {margin:>7.2f} {r['saved']:>12.1%} {r['changed']:>12} "
              f"{r['lost_n']:>5}/{r['n']:<3} {r['lost_10']:>7}/10" + (f"  {r['lost_names']}" if r["lost_10"] else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=("record", "replay"))
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "gp-screening"), help="the record's folder")
    p.add_argument("--preset", default="default")
    p.add_argument("--max-evals", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    (record if args.step == "record" else replay)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
