"""The hall of fame: the search's best entries as rows, with the reference seed's row beside them."""
from __future__ import annotations

from gp_backprop.render import Row
from gp_backprop.search.controller import Controller, Entry

__all__ = ["hall_of_fame"]


def _row(rank: int, e: Entry, ctl: Controller) -> Row:
    sc = e.score
    return Row(rank, e.result.val_acc, e.result.test_acc, e.result.status, e.cand.text, e.cand.latex, e.cand.key,
               e.index + 1, 1 + ctl.hits.get(e.cand.key, 0), e.fitness, sc.std if sc else 0.0, sc.n if sc else 1,
               sc.lr if sc else 0.0)


def hall_of_fame(ctl: Controller, k: int) -> tuple[list[Row], Row | None]:
    """The top ``k`` entries, and the reference seed's row (rank = its place in the population), if trained."""
    rows = [_row(i + 1, e, ctl) for i, e in enumerate(ctl.ranked[:k])]
    ref = ctl.reference()
    ref_row = None
    if ref is not None:
        ref_row = _row(ctl.ranked.index(ref) + 1, ref, ctl)
    return rows, ref_row
