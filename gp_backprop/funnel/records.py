"""The funnel's records in MLflow: which finalists a search offers, and the funnel runs (one child per cell)
written under the search and read back by ``report``."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import primitives as P

from gp_backprop.funnel.plan import Cell, Finalist, Summary, job_task
from gp_backprop.tracking.reader import children, rank_key
from gp_backprop.tracking.store import PARAM_MAX

__all__ = ["CONTROLS", "controls", "finalists", "log_funnel", "read_funnel", "rows"]


# The controls a finalist must beat (README, "The protocol"): the search's reference at its tuned lr, and the
# normalised gradient g/||g||_F, which takes a step of the same size whatever g's scale (so a rule that only rescales
# g gains nothing over it); for hard-threshold nets, FTPROP-MB's FTP-SH and SSTE.
CONTROLS = {False: (("backprop", "backprop (reference)"), ("backprop_fro", "g/||g||_F")),
            True: (("ftp_sh", "FTP-SH"), ("sste", "SSTE"))}
QRELU_CONTROLS = (("ftp_sh_qrelu", "FTP-SH"), ("sste_qrelu", "SSTE"))
LABELS = dict(CONTROLS[False] + CONTROLS[True] + QRELU_CONTROLS)   # a control's name in the table, by its seed


def _finalist(r: Any) -> Finalist:
    p = r.data.params  # search children carry no LaTeX param (the parent's hall_of_fame.png shows it)
    latex = p.get("latex") or P.latex(P.parse(p["equation"], P.default_pset(True)))
    m = r.data.metrics
    return Finalist(p["equation"], latex, p["key"], m.get("fitness", float("nan")), r.info.run_id,
                    search_lr=m.get("lr", 0.0))


def controls(run: Any, seeds: Sequence[str] = ()) -> list[Finalist]:
    """The controls of a search's funnel, the search's own reference first: ``seeds`` (names in ``primitives.SEEDS``)
    or, if none are given, the standard ones for its networks (``CONTROLS``)."""
    params = run.data.params
    hard = params.get("space.hard_threshold") == "True"
    names = QRELU_CONTROLS if hard and params.get("task.model.activation", "").startswith("qrelu") else CONTROLS[hard]
    names = tuple((s, LABELS.get(s, s)) for s in seeds) or names
    reference = params.get("space.reference", names[0][0])
    if reference not in (n for n, _ in names):
        names = ((reference, f"{reference} (reference)"), *names)
    out = []
    for seed, label in names:
        eq = P.parse(P.SEEDS[seed], P.default_pset(hard))
        out.append(Finalist(P.format(eq), P.latex(eq), P.key(eq), control=label))
    return out


def finalists(mc: Any, run: Any, top: int, key: Callable[[str], str] | None = None,
              control_seeds: Sequence[str] = ()) -> list[Finalist]:
    """The ``top`` best distinct functions of a search, or pooled over a list of searches of one task
    (``funnel.pool``), in the order of its summary (``tracking.rank_key``), leaving out the controls
    (``controls(run, control_seeds)``). ``key`` maps equation text to the identity that makes two rows the same
    function (default: ``primitives.function_key``). Two rows whose search records are equal to the last digit
    (fitness, its std, validation loss and test accuracy over the same seeds) also count as one: on this task they
    compute the same thing, whatever they do on inputs the probes or the task never produce."""
    return [f for f in _distinct(mc, run, top, key, control_seeds) if not f.control]


def rows(mc: Any, run: Any, top: int, control_seeds: Sequence[str] = ()) -> list[Finalist]:
    """The funnel's rows: the controls, then ``finalists``. A control other than the search's reference that the
    search found before its ``top``-th finalist is a rediscovery: its row says where (``Finalist.found``), and it is
    trained once, as the control."""
    found = {f.key: f.found for f in _distinct(mc, run, top, None, control_seeds) if f.control}
    first, *others = controls(_runs(run)[0], control_seeds)
    return [first, *(replace(c, found=found.get(c.key, "")) for c in others),
            *finalists(mc, run, top, control_seeds=control_seeds)]


def _runs(run: Any) -> list[Any]:
    return list(run) if isinstance(run, (list, tuple)) else [run]


def _distinct(mc: Any, run: Any, top: int, key: Callable[[str], str] | None,
              control_seeds: Sequence[str]) -> list[Finalist]:
    """The search's distinct functions in rank order until ``top`` of them are no control; those that are a
    control come back as that control, ``found`` at its place in that order."""
    runs = _runs(run)
    pset = P.default_pset(runs[0].data.params.get("space.hard_threshold") == "True")
    kids = sorted((c for r in runs for c in children(mc, r, "params.status = 'ok'")), key=rank_key)
    same = key or (lambda text: P.function_key(P.parse(text, pset)))
    known = {same(c.equation): c for c in controls(runs[0], control_seeds)}
    seen: set[Any] = set()
    chosen: list[Finalist] = []
    for r in kids:
        m = r.data.metrics
        k = same(r.data.params["equation"])
        record = tuple(m.get(name) for name in ("fitness", "fitness_std", "val_loss", "test_acc"))
        whole = None not in record
        if k in seen or (whole and record in seen):
            continue
        seen |= {k, record} if whole else {k}
        place = f"#{len(chosen) + 1} {r.data.params['equation']}"
        chosen.append(replace(known[k], found=place) if k in known else _finalist(r))
        if sum(not f.control for f in chosen) == top:
            break
    return chosen


def log_funnel(mc: Any, search: Any, cells: Sequence[Cell], options: dict[str, str], folder: Path) -> str:
    """A funnel run nested under the search's parent, one child per (equation, setup), and the table, CSV and
    learning-curve plots (everything in ``folder``) as its artifacts. Returns the funnel run's id."""
    from mlflow.entities import Metric, Param

    exp = search.info.experiment_id
    parent = mc.create_run(exp, run_name=f"funnel {options.get('setups', '')}",
                           tags={"mlflow.parentRunId": search.info.run_id, "gp.kind": "funnel"})
    pid = parent.info.run_id
    mc.log_batch(pid, params=[Param(k, str(v)[:PARAM_MAX]) for k, v in options.items()])
    for c in cells:
        child = mc.create_run(exp, run_name=f"{c.setup.label}: {c.finalist.name}"[:250],
                              tags={"mlflow.parentRunId": pid, "gp.kind": "funnel-cell"})
        params = {"equation": c.finalist.equation, "latex": c.finalist.latex, "key": c.finalist.key,
                  "setup": c.setup.name, "optimizer": c.setup.optimizer, "label": c.setup.label,
                  "description": c.setup.description, "control": c.finalist.control, "found": c.finalist.found,
                  "lr_factor": f"{c.finalist.lr_factor:g}", "lr": f"{job_task(c, 0).lr:g}",
                  "seeds": options.get("seeds", ""), "statuses": c.statuses(),
                  "search_fitness": f"{c.finalist.fitness}"}
        metrics = [Metric("test_acc_mean", c.mean, 0, 0), Metric("test_acc_std", c.std, 0, 0)]
        metrics += [Metric("test_acc_seed", a, 0, i) for i, a in enumerate(c.test_accs())]
        metrics += [Metric("val_acc", v, 0, e) for e, v in enumerate(c.val_curve(), 1)]
        mc.log_batch(child.info.run_id, metrics=metrics, params=[Param(k, v[:PARAM_MAX]) for k, v in params.items()])
        mc.set_terminated(child.info.run_id)
    mc.log_artifacts(pid, str(folder))
    mc.set_terminated(pid)
    return pid


def read_funnel(mc: Any, search: Any) -> tuple[Any, list[Summary]] | None:
    """The newest funnel run of a search and its table entries, or None if the search has none."""
    funnels = children(mc, search, "tags.`gp.kind` = 'funnel'", ["attributes.start_time DESC"])
    if not funnels:
        return None
    funnel = funnels[0]
    rows = []
    for r in sorted(children(mc, funnel), key=lambda r: r.info.start_time):
        p = r.data.params
        f = Finalist(p["equation"], p.get("latex", ""), p["key"], float(p.get("search_fitness", "nan")),
                     control=p.get("control", ""), lr_factor=float(p.get("lr_factor", "1")), found=p.get("found", ""))
        history = sorted(mc.get_metric_history(r.info.run_id, "test_acc_seed"), key=lambda m: m.step)
        rows.append(Summary(f, p["label"], r.data.metrics["test_acc_mean"], r.data.metrics["test_acc_std"],
                            tuple(m.value for m in history)))
    return funnel, rows
