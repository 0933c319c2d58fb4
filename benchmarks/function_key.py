"""``primitives.function_key``: time per call next to ``key`` and ``check`` (the controller runs all three once per
candidate), and what it merges on random equations.

    python benchmarks/function_key.py [--timed 500] [--repeats 7] [--paper 4000] [--free 2000] [--threads 1]

Timing: the same ``--timed`` random paper-form equations, the three functions interleaved in each repeat; median
and range over repeats. Merges: over feasible random equations (those that pass ``check``, as the controller keys
only those), the fraction whose function key is shared with an equation of another syntactic key, and the groups
that one probe merges and an independent probe (probe_seed=1) splits: false merges, counted as the equations split off from a group's largest part.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter, defaultdict

import torch

import primitives as P


def per_call_ms(fn, eqs: list) -> float:
    start = time.perf_counter()
    for eq in eqs:
        fn(eq)
    return (time.perf_counter() - start) / len(eqs) * 1e3


def timing(n: int, repeats: int) -> None:
    rng = random.Random(0)
    eqs = [P.random_equation(rng, P.default_pset()) for _ in range(n)]
    P.function_key(eqs[0])  # build the cached probes outside the timing
    fns = {"function_key": P.function_key, "key": P.key, "check": P.check}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(per_call_ms(fn, eqs))
    for name, ts in times.items():
        print(f"{name:>12}: {statistics.median(ts):.3f} ms/call (range {min(ts):.3f}-{max(ts):.3f}) over {n} "
              f"random equations, {repeats} repeats")
    fk, check = times["function_key"], times["check"]
    ratios = [a / b for a, b in zip(fk, check)]
    print(f"function_key / check: {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")


def groups_of(keys: list[str]) -> list[list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        out[k].append(i)
    return list(out.values())


def merges(n_paper: int, n_free: int) -> None:
    eqs = []
    for form, n in (("paper", n_paper), ("free", n_free)):
        rng = random.Random(7)
        eqs += [eq for eq in (P.random_equation(rng, P.default_pset(), form=form) for _ in range(n)) if P.check(eq)]
    syntactic = [P.key(eq) for eq in eqs]
    first = [P.function_key(eq) for eq in eqs]
    second = [P.function_key(eq, probe_seed=1) for eq in eqs]
    merged = [g for g in groups_of(first) if len({syntactic[i] for i in g}) > 1]
    n_merged = sum(len(g) for g in merged)
    print(f"{len(eqs)} feasible random equations ({n_paper} paper, {n_free} free drawn): {n_merged} "
          f"({n_merged / len(eqs):.1%}) share their function key with another syntactic key, in {len(merged)} groups")
    for a, b, name in ((first, second, "probe 0 -> 1"), (second, first, "probe 1 -> 0")):
        false = [g for g in groups_of(a) if len({b[i] for i in g}) > 1]
        # equations the other probe parts from their group's largest part
        n_false = sum(len(g) - max(Counter(b[i] for i in g).values()) for g in false)
        print(f"  false merges ({name}): {len(false)} groups split, {n_false} equations split off "
              f"({n_false / len(eqs):.2%})")
        for g in false[:3]:
            print("    e.g.", " | ".join(str(eqs[i]) for i in g[:3]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timed", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--paper", type=int, default=4000)
    ap.add_argument("--free", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    timing(args.timed, args.repeats)
    merges(args.paper, args.free)


if __name__ == "__main__":
    main()
