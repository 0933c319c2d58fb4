"""``python -m gp_backprop.evaluate "EQUATION"``: train one equation and the backprop baseline under identical
conditions, over several seeds, and print both learning curves and the final accuracies (mean ± std)."""
from __future__ import annotations

import statistics
import sys

from gp_backprop.cli import OneLineParser, fail, positive

PROG = "evaluate"


def parser() -> OneLineParser:
    p = OneLineParser(prog="python -m gp_backprop.evaluate", allow_abbrev=False,
                      description="Train a backward equation against the backprop baseline.")
    p.add_argument("equation", help='text form, e.g. "left(norm_fro(g), g)"; see primitives.SEEDS')
    p.add_argument("--task", default="digits", help="dataset: digits (default), mnist1d, synthetic, cifar10, "
                   "or a plug-in package.module:function returning evaluators.data.Splits")
    p.add_argument("--data-root", help="folder holding cifar-10-batches-py/ (cifar10)")
    p.add_argument("--model", default=None, help="mlp (default), convnet or wrn")
    p.add_argument("--widths", default=None, help="MLP hidden widths, comma-separated (default 64,64)")
    p.add_argument("--activation", default=None, help="relu (default), tanh, sigmoid, sat_relu, sign, qrelu, or "
                   "sign_<rule>/qrelu_<rule> with an FTPROP-MB backward (sign_ftp_sh, sign_sste, ...)")
    p.add_argument("--depth", type=positive(int), default=None, help="WRN depth (default 16)")
    p.add_argument("--width", type=positive(int), default=None, help="WRN widening factor (default 2)")
    p.add_argument("--optimizer", default=None, help="sgd (default), momentum or adam")
    p.add_argument("--lr", type=positive(float), default=None, help="learning rate (default 0.1)")
    p.add_argument("--batch-size", type=positive(int), default=None, help="default 64")
    p.add_argument("--schedule", default=None, help="constant (default), cosine (10%% warm-up) or step")
    p.add_argument("--epochs", type=positive(int), default=None, help="training epochs (default 20)")
    p.add_argument("--seeds", type=positive(int), default=3, help="training seeds 0..K-1 (default 3)")
    p.add_argument("--baseline", default="backprop", help="seed name or equation to compare with (default backprop)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    return p


def _task(args):
    from evaluators import TaskSpec
    changes = {k: v for k, v in dict(optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size,
                                     schedule=args.schedule, epochs=args.epochs).items() if v is not None}
    model = {f"model_{k}": v for k, v in dict(arch=args.model, activation=args.activation, depth=args.depth,
                                              width=args.width).items() if v is not None}
    if args.widths is not None:
        try:
            model["model_widths"] = tuple(int(w) for w in args.widths.split(","))
        except ValueError:
            fail(PROG, f"--widths must be comma-separated integers such as 64,64, got {args.widths!r}")
    return TaskSpec(dataset=args.task, data_root=args.data_root, device=args.device).with_(**changes, **model)


def _mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from evaluators import DataError, TaskError, check_task, evaluate
    from primitives import SEEDS, EquationError, format, parse

    texts = {}
    for label, text in (("baseline", SEEDS.get(args.baseline, args.baseline)), ("equation", args.equation)):
        try:
            texts[label] = format(parse(text))
        except EquationError as exc:
            fail(PROG, f"bad {label}: {exc}")
    task = _task(args)
    try:
        check_task(task)
        runs = {label: [evaluate(text, task.with_(seed=s)) for s in range(args.seeds)] for label, text in texts.items()}
    except (TaskError, DataError) as exc:
        fail(PROG, str(exc))
    names = {"baseline": f"baseline {texts['baseline']}", "equation": texts["equation"]}
    print(f"task: {task.dataset}, {task.model.arch}, {task.optimizer} lr={task.lr}, {task.epochs} epochs, "
          f"{args.seeds} seed(s), {task.device}")
    print("\nvalidation accuracy per epoch (mean ± std over seeds)")
    print(f"{'epoch':>5}  " + "  ".join(f"{names[k][:40]:<40}" for k in runs))
    for e in range(task.epochs):
        cells = []
        for k in runs:
            vals = [r.val_curve[e] for r in runs[k] if len(r.val_curve) > e]
            cells.append(f"{_mean_std(vals) if vals else '-':<40}")
        print(f"{e + 1:>5}  " + "  ".join(cells))
    print()
    for k in runs:
        statuses = ", ".join(f"{s}: {sum(r.status == s for r in runs[k])}" for s in sorted({r.status for r in runs[k]}))
        val = _mean_std([r.val_acc for r in runs[k]])
        test = _mean_std([r.test_acc for r in runs[k]])
        print(f"{names[k]}\n  final val {val}   test {test}   ({statuses})")
        for r in runs[k]:
            if r.status != "ok":
                print(f"  {r.status}: {r.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
