"""The README's DEAP example runs as a plain DEAP loop and its search makes progress."""
import importlib.util
from pathlib import Path

import primitives as P


def test_example_deap_study_improves_alignment():
    path = Path(__file__).resolve().parents[2] / "examples" / "deap_study.py"
    spec = importlib.util.spec_from_file_location("deap_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    hof, log = module.main(generations=8, population=40, seed=0, verbose=False)
    best = log.select("max")
    assert best[-1] > best[0] + 0.05            # selection + the paper's mutation climb
    assert best[-1] > 0.75
    assert all(isinstance(eq, P.Equation) and P.parse(P.format(eq)) == eq for eq in hof)
