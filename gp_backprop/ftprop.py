"""``python -m gp_backprop.ftprop``: FTPROP-MB baselines (Friesen & Domingos 2018, §5; ftprop.md §3.8). Trains each
rule on the same hard-threshold network under identical conditions and prints (and writes as CSV) mean ± std test
accuracy over seeds."""
from __future__ import annotations

import csv
import difflib
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gp_backprop.cli import OneLineParser, fail
from gp_backprop.tracking import DEFAULT_URI, log_table

PROG = "ftprop"
OFFICIAL_EPOCHS = 300            # the official CIFAR-10 runs: 300 epochs, lr x0.1 before epochs 200 and 250
OFFICIAL_DECAY_EPOCHS = (200, 250)
FULL_PRECISION = {"relu": "relu", "sat-relu": "sat_relu"}   # baselines: the same net with a real activation
DSL_SEEDS = {("sign", "ftp-sh"): "ftp_sh", ("sign", "sste"): "sste",
             ("qrelu", "ftp-sh"): "ftp_sh_qrelu", ("qrelu", "sste"): "sste_qrelu"}


@dataclass(frozen=True)
class Recipe:
    """Optimiser defaults per model: Adam with coupled L2 weight decay, as every official CIFAR-10 run."""

    lr: float
    weight_decay: float
    batch_size: int
    epochs: int


RECIPES = {
    "convnet4": Recipe(2.5e-4, 5e-4, 64, OFFICIAL_EPOCHS),   # official README, ConvNet4 CIFAR-10
    "convnet8": Recipe(1e-3, 5e-4, 64, OFFICIAL_EPOCHS),     # official README, ConvNet8 CIFAR-10
    # Digits (1,078 training images, 17 steps per epoch) has no official run. lr and epochs were picked on the
    # validation split (sign MLP 64-64, FTP-SH and SSTE, 3 seeds; lr 3e-4/1e-3/3e-3 x 30/60/150 epochs: all within
    # 0.94-0.96); weight decay and batch size are the official ConvNets'.
    "mlp": Recipe(3e-3, 5e-4, 64, 60),
}


@dataclass(frozen=True)
class Arm:
    """One column of the comparison: a rule name, the activation that implements it, and the equation (None: the
    activation's own autograd backward, i.e. the direct FTPROP-MB route or a full-precision baseline)."""

    rule: str
    activation: str
    equation: str | None


def decay_epochs(epochs: int) -> tuple[int, ...]:
    """The official schedule (x0.1 before epochs 200 and 250 of 300) at the same fractions of ``epochs``."""
    scaled = (1 + round((d - 1) * epochs / OFFICIAL_EPOCHS) for d in OFFICIAL_DECAY_EPOCHS)
    return tuple(e for e in scaled if e <= epochs)


def parser() -> OneLineParser:
    p = OneLineParser(prog="python -m gp_backprop.ftprop", allow_abbrev=False,
                      description="FTPROP-MB baselines: hard-threshold networks trained with each rule.")
    p.add_argument("--task", default="digits", help="dataset: digits (default), cifar10 or synthetic")
    p.add_argument("--data-root", help="folder holding cifar-10-batches-py/ (cifar10)")
    p.add_argument("--model", default="mlp", help="mlp (default; widths from --widths), convnet4 or convnet8")
    p.add_argument("--widths", default="64,64", help="MLP hidden widths, comma-separated (default 64,64)")
    p.add_argument("--act", default="sign", help="hard-threshold activation: sign (default) or qrelu (2-bit)")
    p.add_argument("--rules", default="ftp-sh,sste,relu,sat-relu",
                   help="comma-separated: ftp-sh, sste, ste, sat-hinge, perceptron, hinge (qrelu: ftp-sh, sste, "
                        "sat-hinge), each target rule also as <rule>-unscaled, and the full-precision baselines "
                        "relu, sat-relu (default ftp-sh,sste,relu,sat-relu)")
    p.add_argument("--route", default="direct",
                   help="direct (default: the target-propagation autograd Functions) or dsl (the seed equations "
                        "through rule-driven links; ftp-sh and sste only)")
    p.add_argument("--seeds", type=int, default=5, help="training seeds 0..K-1 (default 5)")
    p.add_argument("--epochs", type=int, help="default: 300 (CIFAR nets, official) or 60 (mlp); the lr decay "
                                              "epochs scale with it")
    p.add_argument("--lr", type=float, help="default: 2.5e-4 (convnet4), 1e-3 (convnet8), 3e-3 (mlp)")
    p.add_argument("--weight-decay", type=float, help="default 5e-4")
    p.add_argument("--batch-size", type=int, help="default 64")
    p.add_argument("--max-batches", type=int, default=0, help="cap training batches per epoch (smoke runs; 0 = all)")
    p.add_argument("--csv", help="write the table here (default ftprop_<task>_<model>_<act>.csv)")
    p.add_argument("--tracking-uri", default=DEFAULT_URI,
                   help="MLflow store for the table (experiment ftprop; default the search's local store)")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    return p


def _rule_names(act: str) -> list[str]:
    from evaluators.ftprop import RULES
    return [name.replace("_", "-") for name in RULES[act]] + list(FULL_PRECISION)


def arms(rules_text: str, act: str, route: str) -> list[Arm]:
    """Parse ``--rules`` for activation ``act``; raises ValueError with a one-line fix."""
    from primitives import SEEDS
    from evaluators.ftprop import RULES
    if act not in RULES:
        raise ValueError(f"unknown --act {act!r}; valid: {', '.join(RULES)}")
    if route not in ("direct", "dsl"):
        raise ValueError(f"unknown --route {route!r}; valid: direct, dsl")
    valid = _rule_names(act)
    out: list[Arm] = []
    for rule in (r.strip() for r in rules_text.split(",")):
        if rule not in valid:
            close = difflib.get_close_matches(rule, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown rule {rule!r} for --act {act}; valid: {', '.join(valid)}{hint}")
        if rule in FULL_PRECISION:
            out.append(Arm(rule, FULL_PRECISION[rule], None))
        elif route == "dsl":
            if (act, rule) not in DSL_SEEDS:
                with_seeds = ", ".join(r for a, r in DSL_SEEDS if a == act)
                raise ValueError(f"rule {rule!r} has no seed equation for --route dsl; use {with_seeds} (or "
                                 f"--route direct)")
            out.append(Arm(rule, act, SEEDS[DSL_SEEDS[act, rule]]))
        else:
            out.append(Arm(rule, f"{act}_{rule.replace('-', '_')}", None))
    if len({a.rule for a in out}) != len(out):
        raise ValueError(f"--rules names a rule twice: {rules_text!r}")
    return out


def _task(args):
    from evaluators import TaskSpec
    recipe = RECIPES.get(args.model, RECIPES["mlp"])
    epochs = args.epochs if args.epochs is not None else recipe.epochs
    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        fail(PROG, f"--widths must be comma-separated integers such as 64,64, got {args.widths!r}")
    return TaskSpec(dataset=args.task, data_root=args.data_root, optimizer="adam",
                    lr=args.lr if args.lr is not None else recipe.lr,
                    weight_decay=args.weight_decay if args.weight_decay is not None else recipe.weight_decay,
                    batch_size=args.batch_size if args.batch_size is not None else recipe.batch_size,
                    epochs=epochs, schedule="step", lr_decay_epochs=decay_epochs(epochs), lr_decay=0.1,
                    device=args.device, max_train_batches=args.max_batches
                    ).with_(model_arch=args.model, model_widths=widths)


def _check(task, runs: list[Arm]) -> None:
    """Fail in one line, before any training, on a task no run could do (model, data, shapes)."""
    from evaluators import DataError, ModelError, TaskError, build_model, check_task, load
    try:
        for arm in runs:
            check_task(task.with_(model_activation=arm.activation))
        splits = load(task.dataset, seed=task.split_seed, root=task.data_root)
        build_model(task.model, splits.input_shape, splits.num_classes)
    except (TaskError, DataError, ModelError) as exc:
        fail(PROG, str(exc))


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for name in ("seeds", "epochs", "batch_size", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            fail(PROG, f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.max_batches < 0:
        fail(PROG, f"--max-batches must be >= 0, got {args.max_batches}")
    try:
        runs = arms(args.rules, args.act, args.route)
    except ValueError as exc:
        fail(PROG, str(exc))
    import torch
    from evaluators import evaluate
    if args.threads:
        torch.set_num_threads(args.threads)
    task = _task(args)
    _check(task, runs)

    rows = []
    for arm in runs:
        results, start = [], time.perf_counter()
        for seed in range(args.seeds):
            results.append(evaluate(arm.equation, task.with_(seed=seed, model_activation=arm.activation)))
            r = results[-1]
            print(f"{arm.rule} seed {seed}: {r.status}, test {r.test_acc:.4f} ({r.wall_time:.1f} s)"
                  + (f": {r.message}" if r.message else ""), file=sys.stderr, flush=True)
        ok = [r for r in results if r.status == "ok"]
        test = _mean_std([r.test_acc for r in ok]) if ok else (float("nan"), float("nan"))
        val = _mean_std([r.val_acc for r in ok]) if ok else (float("nan"), float("nan"))
        rows.append({"rule": arm.rule, "activation": arm.activation, "equation": arm.equation or "",
                     "test_mean": test[0], "test_std": test[1], "val_mean": val[0], "val_std": val[1],
                     "ok": len(ok), "seeds": args.seeds,
                     "test_per_seed": [r.test_acc for r in results],
                     "seconds_per_run": (time.perf_counter() - start) / args.seeds})

    m = task.model
    model = f"{m.arch} {','.join(map(str, m.widths))}" if m.arch == "mlp" else m.arch
    decay = f"lr x0.1 before epochs {', '.join(map(str, task.lr_decay_epochs))}" if task.lr_decay_epochs else "no decay"
    print(f"FTPROP-MB baselines: {task.dataset}, {model}, {args.act} activations, {args.route} route; adam "
          f"lr={task.lr:g} wd={task.weight_decay:g}, batch {task.batch_size}, {task.epochs} epochs ({decay}), "
          f"{args.seeds} seed(s); final-model accuracy, mean ± std over seeds")
    print(f"{'rule':<22}{'activation':<26}{'test acc':<20}{'val acc':<20}{'ok':>4}{'s/run':>8}")
    for r in rows:
        print(f"{r['rule']:<22}{r['activation']:<26}{r['test_mean']:.4f} ± {r['test_std']:.4f}     "
              f"{r['val_mean']:.4f} ± {r['val_std']:.4f}     {r['ok']:>2}/{r['seeds']}{r['seconds_per_run']:>7.1f}")
    path = Path(args.csv or f"ftprop_{task.dataset}_{m.arch}_{args.act}.csv")
    common = {"task": task.dataset, "model": model, "act": args.act, "route": args.route, "epochs": task.epochs,
              "lr": task.lr, "weight_decay": task.weight_decay, "batch_size": task.batch_size}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[*common, *rows[0]])
            writer.writeheader()
            writer.writerows({**common, **r, "test_per_seed": ";".join(f"{a:.4f}" for a in r["test_per_seed"])}
                             for r in rows)
    except OSError as exc:
        fail(PROG, f"cannot write --csv {str(path)!r}: {exc.strerror or exc}")
    print(f"table written to {path}")
    if not args.no_tracking:
        run_id = log_table(args.tracking_uri, "ftprop", f"ftprop {args.act} {model}",
                           {**common, "rules": args.rules, "seeds": args.seeds}, rows, "rule", [path])
        print(f"MLflow: experiment 'ftprop', run {run_id} (one child run per rule; the CSV is its artifact)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
