"""evaluate_many against evaluate: training time per member, side by side in one run, repeated.

    python benchmarks/batched_eval.py [--rounds 3] [--threads 1] [--epochs 5] [--ks 1,8,32,128]

Cases: the digits MLP (64-64, batch 64), an mnist1d-shaped MLP (40 inputs, 10 classes, 4,000 training samples of
random data: only the shapes matter for time) and the ConvNet on digits. Every member trains the same equation
(FA) at its own seed: one candidate at several seeds, the search's common case. Per round, evaluate's time per
member is the mean of a few calls, and evaluate_many's is one call with K members divided by K; the table gives the
ratio many/evaluate per member (median and range over rounds). The first table compares the two ways to run K
MLPs at once that the batched evaluator could use: stacked weights with baddbmm against torch.func's vmap of the
module (forward and backward, plain autograd). On a CUDA machine the tables are printed again on the GPU.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from evaluators import TaskSpec, build_model, evaluate, evaluate_many
from evaluators.batched.model import merge
from evaluators.data import DATASETS, Split, Splits
from primitives import SEEDS

RULE = SEEDS["fa"]


def mnist1d_shaped(*, seed: int = 0, root: str | None = None) -> Splits:
    gen = torch.Generator().manual_seed(seed)
    split = lambda n: Split(torch.randn(n, 40, generator=gen), torch.randint(0, 10, (n,), generator=gen))  # noqa
    return Splits("mnist1d_shaped", split(4000), split(500), split(500), num_classes=10, input_shape=(40,))


def kernels(k: int, device: str, repeats: int = 30) -> tuple[float, float]:
    """Seconds per forward+backward of K digits MLPs (batch 64): stacked baddbmm, then vmap(functional_call)."""
    spec = TaskSpec().model
    models = [build_model(spec, (64,), 10).to(device) for _ in range(k)]
    x, y = torch.randn(k, 64, 64, device=device), torch.randint(0, 10, (k, 64), device=device)
    stacked = merge([build_model(spec, (64,), 10).to(device) for _ in range(k)])
    params, buffers = stack_module_state(models)
    skeleton = models[0]

    def loss_one(p, b, xb, yb):
        return F.cross_entropy(functional_call(skeleton, (p, b), (xb,)), yb)

    def run_stacked():
        stacked.zero_grad()
        losses = F.cross_entropy(stacked(x.reshape(-1, 64)), y.reshape(-1), reduction="none")
        losses.view(k, -1).mean(1).sum().backward()

    def run_vmap():
        for p in params.values():
            p.grad = None
        vmap(loss_one)(params, buffers, x, y).sum().backward()
    times = []
    for fn in (run_stacked, run_vmap):
        fn()
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync(device)
        times.append((time.perf_counter() - start) / repeats)
    return times[0], times[1]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def per_member(task: TaskSpec, k: int, singles: int) -> tuple[float, float]:
    """(evaluate, evaluate_many) seconds per member, measured back to back."""
    start = time.perf_counter()
    for seed in range(singles):
        assert evaluate(RULE, task.with_(seed=seed)).status == "ok"
    one = (time.perf_counter() - start) / singles
    start = time.perf_counter()
    results = evaluate_many([(RULE, task.with_(seed=seed)) for seed in range(k)])
    many = (time.perf_counter() - start) / k
    assert all(r.status == "ok" for r in results), {r.message for r in results}
    return one, many


def table(device: str, args: argparse.Namespace) -> None:
    print(f"\nkernels on {device}: one forward+backward of K digits MLPs, ms (stacked baddbmm | vmap(functional_call))")
    for k in (8, 32, 128):
        stacked, vmapped = kernels(k, device)
        print(f"  K={k:<4} {stacked * 1e3:8.3f} | {vmapped * 1e3:8.3f}   vmap/stacked {vmapped / stacked:.2f}")
    base = TaskSpec(epochs=args.epochs, device=device)
    cases = {"digits MLP 64-64": base, "mnist1d-shaped MLP 64-64": base.with_(dataset="mnist1d_shaped"),
             "digits ConvNet": base.with_(model_arch="convnet")}
    print(f"\nevaluate_many vs evaluate on {device}, FA at K seeds, {args.epochs} epochs, {args.rounds} rounds: "
          f"ms per member (median) and ratio many/evaluate, median (range)")
    for label, task in cases.items():
        evaluate(RULE, task)   # warm-up: data loading, first calls
        for k in args.ks:
            rounds = [per_member(task, k, args.singles) for _ in range(args.rounds)]
            ratios = [many / one for one, many in rounds]
            print(f"  {label:<26} K={k:<4} evaluate {statistics.median(o for o, _ in rounds) * 1e3:8.1f}   "
                  f"many {statistics.median(m for _, m in rounds) * 1e3:8.1f}   ratio {statistics.median(ratios):.3f} "
                  f"({min(ratios):.3f}-{max(ratios):.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (search workers use 1)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--singles", type=int, default=4, help="evaluate calls per round for its time per member")
    ap.add_argument("--ks", type=lambda s: [int(v) for v in s.split(",")], default=[1, 8, 32, 128])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    DATASETS["mnist1d_shaped"] = mnist1d_shaped
    print(f"torch {torch.__version__}, {args.threads} thread(s); target ratio <= 0.333 at K=32 on CPU")
    table("cpu", args)
    if torch.cuda.is_available():
        table("cuda", args)


if __name__ == "__main__":
    main()
