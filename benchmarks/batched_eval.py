"""evaluate_many against evaluate: training time per member, side by side in one run, repeated.

    python benchmarks/batched_eval.py [--rounds 3] [--threads 1] [--epochs 5] [--ks 1,8,32,128] [--devices cpu,cuda]

Cases: the digits MLP (64-64, batch 64), an mnist1d-shaped MLP (40 inputs, 10 classes, 4,000 training samples of
random data), the default search network (MNIST-1D, MLP 100-100, lr 0.4) and the ConvNet on digits. Members are one
equation (FA, or backprop where the label says so) at K seeds, or at the search's lr grid (x1/2, x1, x2: member i at
seed i // 3 and lr grid[i % 3]), the two ways one candidate's trainings fill a batch. Per round, evaluate's time per
member is the mean of a few calls on the first members, and evaluate_many's is one call with all K members divided
by K; the table gives the ratio many/evaluate per member (median and range over rounds), both sides with the same
members, epochs and threads. The first table compares the two ways to run K MLPs at once that the batched evaluator
could use: stacked weights with baddbmm against torch.func's vmap of the module (forward and backward, plain
autograd). On a CUDA machine the tables are printed again on the GPU (``--devices`` picks the devices).
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


LR_GRID = (0.5, 1.0, 2.0)   # the search's per-candidate grid around the tuned lr (fitness.lr_grid)


def members(rule: str, task: TaskSpec, k: int, grid: bool) -> list[tuple[str, TaskSpec]]:
    """K members of one equation: K seeds, or the lr grid at K / 3 seeds."""
    if not grid:
        return [(rule, task.with_(seed=i)) for i in range(k)]
    return [(rule, task.with_(seed=i // 3, lr=task.lr * LR_GRID[i % 3])) for i in range(k)]


def per_member(batch: list[tuple[str, TaskSpec]], singles: int) -> tuple[float, float]:
    """(evaluate, evaluate_many) seconds per member, measured back to back."""
    ones = [batch[i % len(batch)] for i in range(singles)]
    start = time.perf_counter()
    for text, task in ones:
        assert evaluate(text, task).status == "ok"
    one = (time.perf_counter() - start) / singles
    start = time.perf_counter()
    results = evaluate_many(batch)
    many = (time.perf_counter() - start) / len(batch)
    assert all(r.status == "ok" for r in results), {r.message for r in results}
    return one, many


def cases(device: str, epochs: int) -> dict[str, tuple[str, TaskSpec, bool]]:
    """label -> (equation, task, members at the lr grid?)."""
    base = TaskSpec(epochs=epochs, device=device)
    default = base.with_(dataset="mnist1d", model_widths=(100, 100), lr=0.4)   # the default search's network
    return {"digits MLP 64-64, FA seeds": (RULE, base, False),
            "mnist1d-shaped 64-64, FA seeds": (RULE, base.with_(dataset="mnist1d_shaped"), False),
            "mnist1d MLP 100-100, FA seeds": (RULE, default, False),
            "mnist1d MLP 100-100, FA lr grid": (RULE, default, True),
            "mnist1d MLP 100-100, BP lr grid": (SEEDS["backprop"], default, True),
            "digits ConvNet, FA seeds": (RULE, base.with_(model_arch="convnet"), False)}


def table(device: str, args: argparse.Namespace) -> None:
    print(f"\nkernels on {device}: one forward+backward of K digits MLPs, ms (stacked baddbmm | vmap(functional_call))")
    for k in (8, 32, 128):
        stacked, vmapped = kernels(k, device)
        print(f"  K={k:<4} {stacked * 1e3:8.3f} | {vmapped * 1e3:8.3f}   vmap/stacked {vmapped / stacked:.2f}")
    print(f"\nevaluate_many vs evaluate on {device}, {args.epochs} epochs, {args.rounds} rounds: "
          f"ms per member (median) and ratio many/evaluate, median (range)")
    for label, (rule, task, grid) in cases(device, args.epochs).items():
        evaluate(rule, task)   # warm-up: data loading, first calls
        for k in args.ks:
            batch = members(rule, task, k, grid)
            rounds = [per_member(batch, args.singles) for _ in range(args.rounds)]
            ratios = [many / one for one, many in rounds]
            print(f"  {label:<32} K={k:<4} evaluate {statistics.median(o for o, _ in rounds) * 1e3:8.1f}   "
                  f"many {statistics.median(m for _, m in rounds) * 1e3:8.1f}   ratio {statistics.median(ratios):.3f} "
                  f"({min(ratios):.3f}-{max(ratios):.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (search workers use 1)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--singles", type=int, default=4, help="evaluate calls per round for its time per member")
    ap.add_argument("--ks", type=lambda s: [int(v) for v in s.split(",")], default=[1, 8, 32, 128])
    ap.add_argument("--devices", type=lambda s: s.split(","),
                    default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    DATASETS["mnist1d_shaped"] = mnist1d_shaped
    print(f"torch {torch.__version__}, {args.threads} thread(s); target ratio <= 0.333 at K=32 on CPU")
    if torch.cuda.is_available():
        print(f"cuda: {torch.cuda.get_device_name()}")
    for device in args.devices:
        table(device, args)


if __name__ == "__main__":
    main()
