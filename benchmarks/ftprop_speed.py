"""FTPROP-MB's cost: step time of a sign ConvNet4 trained with FTP-SH as a DSL equation (rule-driven links) divided
by the same net with ReLU and plain autograd, measured side by side (interleaved repeats, median) in one run.

    python benchmarks/ftprop_speed.py [--repeats 15] [--steps 5] [--threads 1]

CIFAR-shaped random inputs (3x32x32), batch 64, Adam as in the official runs (ftprop.md §3.8). Target ratio <= 1.15.
The direct route (FTP-SH as the activation's own autograd Function, evaluators/ftprop.py) is printed for reference.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from evaluators import ModelSpec, TaskSpec, build_model, install_rule
from evaluators.train import make_optimizer
from primitives import SEEDS, compile, parse

CASES = {   # label -> (activation, equation or None for plain autograd)
    "relu, autograd": ("relu", None),
    "sign, FTP-SH equation (DSL)": ("sign", SEEDS["ftp_sh"]),
    "sign, FTP-SH Function (direct)": ("sign_ftp_sh", None),
}
BATCH = 64


class Trainer:
    """One model and optimizer per case, built once; ``time(steps)`` runs full training steps."""

    def __init__(self, activation: str, equation: str | None, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = build_model(ModelSpec(arch="convnet4", activation=activation), (3, 32, 32), 10)
        install_rule(self.model, None if equation is None else compile(parse(equation)), seed, 10)
        self.opt = make_optimizer(self.model, TaskSpec(optimizer="adam", lr=2.5e-4, weight_decay=5e-4))
        gen = torch.Generator().manual_seed(seed + 1)
        self.x = torch.randn(BATCH, 3, 32, 32, generator=gen)
        self.y = torch.randint(0, 10, (BATCH,), generator=gen)

    def time(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(self.model(self.x), self.y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steps", type=int, default=5, help="training steps per timed repeat")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (search workers use 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    trainers = {label: Trainer(*case) for label, case in CASES.items()}
    for t in trainers.values():   # warm-up: allocator, kernels, the links' layer contexts
        t.time(2)
    times: dict[str, list[float]] = {label: [] for label in trainers}
    for _ in range(args.repeats):
        for label, t in trainers.items():
            times[label].append(t.time(args.steps))
    base = times["relu, autograd"]
    print(f"ConvNet4, 3x32x32 random inputs, batch {BATCH}, Adam; torch {torch.__version__}, {args.threads} "
          f"thread(s), median of {args.repeats} interleaved repeats x {args.steps} steps; target ratio <= 1.15")
    for label, ts in times.items():
        ratios = [t / b for t, b in zip(ts, base)]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(f"{label:<32} {statistics.median(ts) * 1e3:8.1f} ms/step   ratio to relu {statistics.median(ratios):.3f} "
              f"(quartiles {q[0]:.3f}-{q[2]:.3f})")


if __name__ == "__main__":
    main()
