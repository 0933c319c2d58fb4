"""The README's DEAP example runs as a plain DEAP loop, and its search does better than chance."""
import importlib.util
import random
from pathlib import Path

import pytest

import primitives as P


def load_example():
    path = Path(__file__).resolve().parents[2] / "examples" / "deap_study.py"
    spec = importlib.util.spec_from_file_location("deap_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_deap_study_beats_random_search_with_the_same_budget():
    example = load_example()
    target = P.compile(P.parse(example.TARGET))
    # The objective is a cosine similarity: at most 1, reached by the hidden target itself.
    assert example.alignment(P.parse(example.TARGET), target)[0] == pytest.approx(1.0, abs=1e-6)

    hof, log = example.main(generations=8, population=40, seed=0, verbose=False)
    best = log.select("max")
    evaluations = sum(log.select("nevals"))
    # The baseline: as many equations drawn at random from the same generator, the best of them.
    rng, pset = random.Random(0), P.make_pset()
    baseline = max(example.alignment(P.random_equation(rng, pset), target)[0] for _ in range(evaluations))
    assert best[0] < best[-1] <= 1.0 + 1e-6                   # selection + the paper's mutation climb
    assert best[-1] > baseline, (best[-1], baseline)
    assert hof[0].fitness.values[0] == best[-1]
    assert all(isinstance(eq, P.Equation) and P.parse(P.format(eq)) == eq for eq in hof)
