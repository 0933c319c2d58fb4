"""Hall of fame, fitness curves, the plot and the summary table."""
from __future__ import annotations

import random
import statistics
from pathlib import Path

from evaluators.task import EvalResult
from gp_backprop.config import SpaceConfig
from gp_backprop.search.controller import Controller
from gp_backprop.render import Row, fitness_curves, mathtext, plot_equations, plot_progress, summary_table, write_csv
from gp_backprop.search import hall_of_fame


def test_curves_are_the_best_and_median_so_far() -> None:
    rng = random.Random(0)
    fit = [rng.random() for _ in range(1000)]
    xs, best, median, top = fitness_curves(fit, top=10, points=50)
    assert xs[-1] == 1000 and len(xs) <= 51
    for x, b, m, t in zip(xs, best, median, top):
        assert b == max(fit[:x]) and m == statistics.median(fit[:x])
        assert t == statistics.median(sorted(fit[:x])[-10:])


def test_hall_of_fame_and_table_show_the_reference(tmp_path: Path) -> None:
    ctl = Controller(SpaceConfig(population=6), seed=0)
    for acc in (0.5, 0.9, 0.1, 0.7, 0.6, 0.2):
        ctl.tell(ctl.propose().cid, EvalResult("ok", val_acc=acc, test_acc=acc - 0.05))
    rows, ref = hall_of_fame(ctl, 3)
    assert [r.val_acc for r in rows] == [0.9, 0.7, 0.6] and [r.rank for r in rows] == [1, 2, 3]
    assert ref is not None and ref.equation == "left(g, g)" and ref.rank == 4 and ref.evaluation == 1
    assert rows[0].latex and rows[0].times_proposed == 1
    table = summary_table(rows, ref, "backprop")
    assert "+0.4000" in table and "<- backprop seed" in table
    write_csv(rows, tmp_path / "hof.csv")
    lines = (tmp_path / "hof.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("rank,val_acc,test_acc,status,equation,latex")
    plot_progress([e.fitness for e in ctl.population], ref.val_acc, tmp_path / "f.png", "t", top=3)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_primitive_latex_typesets_with_mathtext(tmp_path: Path) -> None:
    """The hall of fame image renders the LaTeX of every seed and of random equations over the whole set."""
    import primitives as P
    from matplotlib.mathtext import math_to_image

    pset = P.default_pset(True)
    rng = random.Random(0)
    eqs = [P.parse(t, pset) for t in P.SEEDS.values()] + [P.random_equation(rng, pset) for _ in range(300)]
    for eq in eqs:
        math_to_image(f"${mathtext(P.latex(eq))}$", tmp_path / "one.png")   # raises on what mathtext cannot parse
    rows = [Row(i + 1, 0.9, 0.9, "ok", P.format(eq), P.latex(eq), "k", i + 1, 1) for i, eq in enumerate(eqs[:20])]
    plot_equations(rows, rows[0], tmp_path / "hall_of_fame.png")
    assert (tmp_path / "hall_of_fame.png").read_bytes()[:4] == b"\x89PNG"
