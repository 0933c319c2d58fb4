"""The funnel's files in one folder: the table as markdown and CSV, each row's lr tuning table, and the learning
curves of each setup (``reevaluate`` and campaigns write the same set)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gp_backprop.funnel.plan import Cell, Finalist
from gp_backprop.funnel.setups import Setup
from gp_backprop.funnel.table import plot_curves, table, write_csv
from gp_backprop.tuning import Tuning

__all__ = ["save", "curves_name"]


def curves_name(label: str) -> str:
    """The file of a setup's learning curves: ``curves_A1_SGD.png``."""
    return f"curves_{label.replace(' ', '_').replace('+', 'p')}.png"


def save(out: Path, cells: list[Cell], setups: Sequence[Setup], tables: dict[tuple[str, str], Tuning],
         rows: Sequence[Finalist]) -> None:
    """``funnel.md``, ``funnel.csv``, ``tuning.txt`` and ``curves_<setup>.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "funnel.md").write_text(table(cells, markdown=True) + "\n", encoding="utf-8")
    write_csv(cells, out / "funnel.csv")
    names = {r.key: r.name for r in rows}
    text = [f"{names[key]} on {dataset}:\n{t.table()}\n" for (key, dataset), t in tables.items()]
    (out / "tuning.txt").write_text("\n".join(text) or "not tuned (--no-tune)\n", encoding="utf-8")
    for label in dict.fromkeys(s.label for s in setups):
        plot_curves(cells, label, out / curves_name(label))
