"""MLflow tracking off the search's critical path: one experiment per search name, a parent run per search and a
nested child run per trained candidate, written by one background thread of the controller process. The parent
run's progress metrics and artifacts go ahead of queued child runs.

Each child is ``create_run`` (tags) + one ``log_batch`` (params and metrics) + ``set_terminated``, through
``MlflowClient`` only, so nothing touches MLflow's global active-run state.
"""
from __future__ import annotations

import itertools
import math
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from evaluators.task import EvalResult

from gp_backprop.errors import first_line
from gp_backprop.render import plot_progress, write_csv
from gp_backprop.tracking.store import PARAM_MAX, TrackingError, check_server, client

__all__ = ["Tracker", "Trained"]

_FAILED = ("error", "crashed", "timeout")  # shown as failed runs in the UI
_PARENT, _CHILD, _END = 0, 1, 2   # writer queue priorities: the parent run's metrics first, the end last


def _ms(t: float) -> int:
    return int(t * 1000)


class Trained(Protocol):
    """What the writer reads of one trained candidate (the search's population entry)."""

    index: int                # evaluation number, from 0
    cand: Any                 # .text, .latex, .key, .parent, .origin, .mutation
    result: EvalResult
    score: Any                # .mean, .std, .n, .lr, .val_loss over its seeds (None: the result alone)
    fitness: float
    busy: float               # worker seconds
    at: float                 # epoch seconds when the result came back


class Tracker:
    """Queue-fed MLflow writer. ``open`` is synchronous (the parent run id goes into the checkpoint); everything
    after it is queued and written by the thread; ``close`` waits for the queue to drain."""

    def __init__(self, uri: str, experiment: str, artifacts: str = "mlruns/artifacts", reference_name: str = "backprop",
                 top: int = 0) -> None:
        self.uri, self.experiment, self.artifact_root = uri, experiment, artifacts  # for a new sqlite experiment
        self.reference_name, self.top = reference_name, top             # for the plot: reference line, top-N median
        self.client: Any = None
        self.run_id = ""
        self.experiment_id = ""
        self.logged = 0                  # population entries (a prefix) handed to MLflow; read by checkpoints
        self.failures = 0
        self.first_failure = ""
        self.write_error = ""            # a local file write that failed (disk full, read-only): the search stops
        self._done = 0                   # queue items handled, to tell a slow writer from a stuck one
        # The writer lags behind the search on a busy machine (it runs on idle CPU only), so the parent run's
        # progress metrics and artifacts jump the queue of child runs: the UI's charts stay current. The sequence
        # number keeps FIFO order within a priority (child runs are logged as a prefix of the population).
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()
        self._children_in = self._children_out = 0   # child runs queued / handled (one writer thread each)
        self._thread = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)

    # ---- controller side ----------------------------------------------------------------------------------------
    def open(self, params: dict[str, str], run_id: str = "", entries: Sequence[Trained] = (), logged: int = 0) -> str:
        """Create the experiment and parent run, or on resume reopen ``run_id`` whose children cover the first
        ``logged`` of ``entries``; then start the writer thread and queue the entries not yet in MLflow."""
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        check_server(self.uri)
        try:
            self.client = client(self.uri)
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                self.experiment_id = self.client.create_experiment(self.experiment, self._artifact_location())
            else:
                self.experiment_id = exp.experiment_id
            if run_id and self._exists(run_id):
                self.run_id = run_id
                self.client.update_run(run_id, status="RUNNING")
                pending = list(entries[logged:])
                present = self._reconcile(pending)
                self.logged = logged
            else:
                pending = list(entries)
                run = self.client.create_run(self.experiment_id, run_name=f"search {self.experiment}",
                                             tags={"gp.kind": "search"})
                self.run_id = run.info.run_id
                items = [Param(k, v[:PARAM_MAX]) for k, v in params.items()]
                for i in range(0, len(items), 100):  # log_batch takes at most 100 params
                    self.client.log_batch(self.run_id, params=items[i:i + 100])
                present = set()
        except (MlflowException, OSError) as exc:
            raise TrackingError(f"cannot use the MLflow store at {self.uri}: {first_line(exc)[:300]}; check "
                                "--tracking-uri (is the server running?) or pass --no-tracking") from exc
        self._thread.start()
        for e in pending:
            self._put(_CHILD, ("child", e, e.index in present))
        return self.run_id

    def child(self, entry: Trained) -> None:
        self._put(_CHILD, ("child", entry, False))

    def progress(self, step: int, metrics: dict[str, float]) -> None:
        self._put(_PARENT, ("metrics", step, metrics, time.time()))

    def artifacts(self, rows: Sequence[Any], fitness: Sequence[float], reference: float | None) -> None:
        self._put(_PARENT, ("artifacts", list(rows), list(fitness), reference))

    def note(self, params: dict[str, str], files: dict[str, str]) -> None:
        """Params and small text files (name -> content) for the parent run, e.g. the lr tuning table."""
        self._put(_PARENT, ("note", dict(params), dict(files)))

    def backlog(self) -> int:
        return self._children_in - self._children_out

    def close(self, status: str = "FINISHED", stall: float = 120.0) -> bool:
        """Finish the parent run after everything queued. Waits as long as the writer makes progress; gives up
        (returns False) after ``stall`` seconds without any, e.g. when the server went away."""
        if not self._thread.is_alive():
            return True
        self._put(_END, ("end", status))
        seen, since = -1, time.monotonic()
        while self._thread.is_alive() and time.monotonic() - since < stall:
            if self._done != seen:
                seen, since = self._done, time.monotonic()
            self._thread.join(1.0)
        return not self._thread.is_alive()

    def _put(self, priority: int, item: tuple) -> None:
        if item[0] == "child":
            self._children_in += 1
        self._queue.put((priority, next(self._seq), item))

    # ---- writer thread ------------------------------------------------------------------------------------------
    def _work(self) -> None:
        if hasattr(os, "SCHED_IDLE"):
            # The writer runs only on CPU the workers and the controller leave idle (Linux schedules threads one by
            # one), so tracking never slows the search; a backlog left by a saturated machine is written by close().
            try:
                os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
            except OSError:  # a sandbox that forbids it: the writer then runs at normal priority
                pass
        while True:
            item = self._queue.get()[2]
            try:
                if item[0] == "child":
                    if not item[2]:
                        self._log_child(item[1])
                elif item[0] == "metrics":
                    self._log_metrics(*item[1:])
                elif item[0] == "artifacts":
                    self._log_artifacts(*item[1:])
                elif item[0] == "note":
                    self._log_note(*item[1:])
                elif item[0] == "end":
                    self.client.set_terminated(self.run_id, item[1])
                    return
            except Exception as exc:  # noqa: BLE001 - tracking must never crash the search
                if isinstance(exc, OSError) and not self.write_error:  # but a full disk stops it, as for checkpoints
                    self.write_error = f"cannot write {exc.filename or 'the MLflow artifacts'} ({exc.strerror})"
                self.failures += 1
                if self.failures == 1:
                    self.first_failure = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
                    print(f"warning: MLflow tracking failed ({self.first_failure}); the search goes on, the "
                          "checkpoint keeps every result", file=sys.stderr)
            finally:
                self._done += 1
                if item[0] == "child":
                    self.logged += 1
                    self._children_out += 1

    def _log_child(self, e: Trained) -> None:
        from mlflow.entities import Metric, Param

        r, c = e.result, e.cand
        end = _ms(e.at)
        start = end - _ms(e.busy)
        run = self.client.create_run(self.experiment_id, start_time=start, run_name=c.text[:250],
                                     tags={"mlflow.parentRunId": self.run_id, "gp.key": c.key})
        params = {"equation": c.text, "latex": c.latex, "key": c.key, "parent_key": c.parent,
                  "mutation": c.mutation, "origin": c.origin, "status": r.status, "evaluation": str(e.index + 1),
                  "message": r.message, "size": str(c.size)}
        metrics = [Metric("val_acc", v, end, step) for step, v in enumerate(r.val_curve, 1)]
        if not r.val_curve:
            metrics.append(Metric("val_acc", r.val_acc, end, 0))
        metrics += [Metric("fitness", e.fitness, end, 0), Metric("test_acc", r.test_acc, end, 0),
                    Metric("wall_time", r.wall_time or e.busy, end, 0)]
        if e.score is not None:  # mean over seeds at the chosen lr (README, "The protocol")
            metrics += [Metric("fitness_std", e.score.std, end, 0), Metric("seeds", e.score.n, end, 0),
                        Metric("lr", e.score.lr, end, 0)]
            if math.isfinite(e.score.val_loss):
                metrics.append(Metric("val_loss", e.score.val_loss, end, 0))
        self.client.log_batch(run.info.run_id, metrics=metrics,
                              params=[Param(k, v[:PARAM_MAX]) for k, v in params.items()])
        self.client.set_terminated(run.info.run_id, "FAILED" if r.status in _FAILED else "FINISHED", end)

    def _log_metrics(self, step: int, metrics: dict[str, float], at: float) -> None:
        from mlflow.entities import Metric

        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), _ms(at), step) for k, v in metrics.items()])

    def _log_artifacts(self, rows: list[Any], fitness: list[float], reference: float | None) -> None:
        with tempfile.TemporaryDirectory() as d:
            write_csv(rows, Path(d) / "hall_of_fame.csv")
            plot_progress(fitness, reference, Path(d) / "fitness.png", title=self.experiment,
                          reference_name=self.reference_name, top=self.top)
            self.client.log_artifacts(self.run_id, d)

    def _log_note(self, params: dict[str, str], files: dict[str, str]) -> None:
        from mlflow.entities import Param

        if params:
            self.client.log_batch(self.run_id, params=[Param(k, v[:PARAM_MAX]) for k, v in params.items()])
        with tempfile.TemporaryDirectory() as d:
            for name, text in files.items():
                (Path(d) / name).write_text(text, encoding="utf-8")
            self.client.log_artifacts(self.run_id, d)

    # ---- helpers ------------------------------------------------------------------------------------------------
    def _artifact_location(self) -> str | None:
        # A local sqlite store keeps artifacts beside it (mlruns/artifacts/<name>); a server decides for itself.
        if self.uri.startswith("sqlite:"):
            return (Path(self.artifact_root) / self.experiment).resolve().as_uri()
        return None

    def _exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException:
            return False

    def _reconcile(self, pending: Sequence[Trained]) -> set[int]:
        """Evaluation indexes among ``pending`` that already have a whole child run (logged just before a kill).

        A kill can also land between a child's ``create_run`` and its ``log_batch``: that run has the ``gp.key``
        tag but no params. It is deleted here and the candidate is logged again, so each candidate keeps exactly
        one child run. A whole child still RUNNING (killed before ``set_terminated``) is terminated.
        """
        if not pending:
            return set()
        since = min(_ms(e.at - e.busy) for e in pending) - 1000
        runs = self.client.search_runs(
            [self.experiment_id], max_results=len(pending) + 100,
            filter_string=f"tags.mlflow.parentRunId = '{self.run_id}' and attributes.start_time >= {since}")
        present = set()
        for r in runs:
            if "evaluation" not in r.data.params:
                self.client.delete_run(r.info.run_id)
                continue
            present.add(int(r.data.params["evaluation"]) - 1)
            if r.info.status == "RUNNING":
                failed = r.data.params.get("status") in _FAILED
                self.client.set_terminated(r.info.run_id, "FAILED" if failed else "FINISHED")
        return present
