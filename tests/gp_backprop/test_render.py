"""Hall of fame, fitness curves, the plot and the summary table."""
from __future__ import annotations

import random
import statistics
from pathlib import Path

from evaluators.task import EvalResult
from gp_backprop.config import SpaceConfig
from gp_backprop.search.controller import Controller
from gp_backprop.render import fitness_curves, plot_progress, summary_table, write_csv
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
