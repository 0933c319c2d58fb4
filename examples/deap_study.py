"""Use gp-backprop's primitive set in a plain DEAP loop (no gp-backprop search code, no creator).

Toy objective: find a backward equation whose output points the same way as a hidden target rule on random
dense and conv operands (cosine similarity, maximised). Run: python examples/deap_study.py
"""
from __future__ import annotations

import random

import torch
from deap import algorithms, base, tools

import primitives as P

TARGET = "add(norm_fro(g), scale_0.1(hp))"
PROBES = (P.make_probe("dense", dtype=torch.float32), P.make_probe("conv", dtype=torch.float32))


def alignment(equation: P.Equation, target: P.Rule) -> tuple[float]:
    if not P.check(equation):           # the paper's feasibility test: non-finite on a probe scores worst
        return (-1.0,)
    rule = P.compile(equation)
    total = 0.0
    with torch.no_grad():
        for probe in PROBES:
            out, want = rule(probe.env(), probe.context()), target(probe.env(), probe.context())
            total += float(torch.nn.functional.cosine_similarity(out.flatten(), want.flatten(), dim=0))
    return (total / len(PROBES),)


def main(generations: int = 15, population: int = 60, seed: int = 0, verbose: bool = True):
    rng = random.Random(seed)
    random.seed(seed)                                   # DEAP's algorithms draw from the global random module
    pset = P.make_pset()
    target = P.compile(P.parse(TARGET))

    toolbox = base.Toolbox()
    toolbox.register("individual", P.random_equation, rng, pset)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    toolbox.register("evaluate", alignment, target=target)
    toolbox.register("mutate", lambda eq: (P.mutate(eq, rng, pset=pset),))
    toolbox.register("mate", lambda a, b: (a, b))      # mutation only, as in the paper
    toolbox.register("select", tools.selTournament, tournsize=3)

    pop = toolbox.population(n=population)
    hof = tools.HallOfFame(5)
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    pop, log = algorithms.eaMuPlusLambda(pop, toolbox, mu=population, lambda_=population, cxpb=0.0, mutpb=1.0,
                                         ngen=generations, stats=stats, halloffame=hof, verbose=verbose)
    if verbose:
        for eq in hof:
            print(f"{eq.fitness.values[0]:.4f}  {P.format(eq)}")
    return hof, log


if __name__ == "__main__":
    main()
