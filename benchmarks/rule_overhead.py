"""Rule-driven backward vs plain autograd: time per training epoch with the backprop seed divided by the same model
trained with plain autograd, measured side by side (interleaved, median of repeats) in one run.

    python benchmarks/rule_overhead.py [--repeats 15] [--threads 1]

Cases: the default search's MLP (64-64-64-10) on digits, and WRN-10-1 on random 32x32 inputs (CIFAR-10 shape).
The exact same ``train`` function runs both; only the rule differs (None = plain autograd).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from evaluators import TaskSpec, build_model, install_rule, load
from evaluators.data import Split, Splits
from evaluators.train import train
from primitives import SEEDS, compile, parse


def random_images(n: int = 256, seed: int = 0) -> Splits:
    gen = torch.Generator().manual_seed(seed)
    split = lambda k: Split(torch.randn(k, 3, 32, 32, generator=gen), torch.randint(0, 10, (k,), generator=gen))  # noqa
    return Splits(name="random32", train=split(n), val=split(64), test=split(64), num_classes=10,
                  input_shape=(3, 32, 32))


def epoch_time(task: TaskSpec, splits: Splits, rule_text: str | None) -> float:
    torch.manual_seed(task.seed)
    model = build_model(task.model, splits.input_shape, splits.num_classes)
    rule = None if rule_text is None else compile(parse(rule_text))
    install_rule(model, rule, task.seed, splits.num_classes)
    start = time.perf_counter()
    result = train(model, splits, task)
    elapsed = time.perf_counter() - start
    assert result.status == "ok", result.message
    return elapsed / task.epochs


def compare(label: str, task: TaskSpec, splits: Splits, repeats: int) -> float:
    epoch_time(task, splits, None), epoch_time(task, splits, SEEDS["backprop"])   # warm-up
    plain, rule = [], []
    for _ in range(repeats):
        plain.append(epoch_time(task, splits, None))
        rule.append(epoch_time(task, splits, SEEDS["backprop"]))
    ratios = [r / p for r, p in zip(rule, plain)]
    ratio = statistics.median(ratios)
    # Noise on a shared machine only adds time, so the fastest repeat of each is the cleanest estimate of its cost.
    print(f"{label:<34} plain {min(plain) * 1e3:8.2f} ms/epoch   backprop seed {min(rule) * 1e3:8.2f} ms/epoch   "
          f"ratio of best {min(rule) / min(plain):.3f}   median of paired ratios {ratio:.3f} "
          f"(quartiles {statistics.quantiles(ratios, n=4)[0]:.3f}-{statistics.quantiles(ratios, n=4)[2]:.3f})")
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (search workers use 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} interleaved repeats; "
          f"target ratio <= 1.10")
    compare("MLP 64-64-64-10, digits, batch 64", TaskSpec(epochs=10), load("digits"), args.repeats)
    wrn = TaskSpec(epochs=1, batch_size=32).with_(model_arch="wrn", model_depth=10, model_width=1)
    compare("WRN-10-1, 32x32 inputs, batch 32", wrn, random_images(), max(3, args.repeats // 3))


if __name__ == "__main__":
    main()
