"""MLflow tracking off the search's critical path: one experiment per search name (or a shared one, e.g. a
campaign's, with the search's parent run nested under the campaign's), a parent run per search and a nested child run
per trained candidate, written by one thread of the controller process.

The thread wakes every ``flush_every`` seconds and writes what came in since: the child runs in order (a batch per
database transaction on a local store, see ``sinks``), then the parent's progress metrics, tags and artifacts. A
write counts only once it succeeded; a failed one stays queued and is retried with backoff, so the runs in MLflow
are always the first ``logged`` results (and ``--resume`` writes the rest, found by their ``gp.key`` tag).
"""
from __future__ import annotations

import collections
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from evaluators.task import EvalResult

from gp_backprop.errors import first_line
from gp_backprop.render import plot_equations, plot_progress, write_csv
from gp_backprop.tracking.describe import describe_search
from gp_backprop.tracking.runs import FAILED, RunRecord, child_record, relevant_params, run_name
from gp_backprop.tracking.sinks import make_sink
from gp_backprop.tracking.store import PARAM_MAX, TrackingError, check_server, client, fail_fast
from gp_backprop.tracking.store import experiment as new_experiment

__all__ = ["Tracker", "Trained"]

FLUSH = 1.0               # seconds between writes: a run is in MLflow ~1 s after its result, in one transaction
RETRY = (0.5, 8.0)        # backoff after a failed write: first and longest wait, in seconds
OUTAGE = 5.0              # seconds of failed writes before the one warning line
CLOSE_WAIT = 30.0         # the most the end of a search waits for MLflow without a successful write


class Trained(Protocol):
    """What the writer reads of one trained candidate (the search's population entry)."""

    index: int                # evaluation number, from 0
    cand: Any                 # .text, .key, .parent, .origin, .mutation, .latex
    result: EvalResult
    score: Any                # .mean, .std, .n, .lr, .val_loss over its seeds (None: the result alone)
    fitness: float            # the score's mean (or the result's fitness)
    busy: float               # worker seconds
    at: float                 # epoch seconds when the result came back


class Tracker:
    """Queue-fed MLflow writer. ``open`` is synchronous (the parent run id goes into the checkpoint); everything
    after it is written by the thread; ``close`` writes what is left (``CLOSE_WAIT`` seconds at most without a
    successful write)."""

    def __init__(self, uri: str, name: str, artifacts: str = "mlruns/artifacts", reference_name: str = "backprop",
                 top: int = 0, flush_every: float = FLUSH, *, experiment: str = "", parent_run_id: str = "") -> None:
        self.uri, self.name, self.artifact_root = uri, name, artifacts   # artifacts: for a new sqlite experiment
        # The search's experiment (default: its name), and a run of it to nest the search under (a campaign's).
        self.experiment, self.parent_run_id = experiment or name, parent_run_id
        self.reference_name, self.top = reference_name, top             # for the plot: reference line, top-N median
        self.flush_every = flush_every
        self.client: Any = None
        self.sink: Any = None
        self.run_id = self.experiment_id = ""
        self.logged = 0                  # population entries whose child run is in MLflow
        self.failures = 0                # failed writes (each retried)
        self.first_failure = ""
        self.warned = False
        self._pending: collections.deque = collections.deque()   # entries not yet in MLflow, in order
        self._records: dict[int, RunRecord] = {}                 # built once, so a retry writes the same run
        self._ids: dict[str, tuple[str, str]] = {}               # gp.key -> (run id, run name) of written runs
        self._lock = threading.Lock()                            # the parent's queued metrics, tags, artifacts
        self._metrics: list[tuple[str, float, int, int]] = []
        self._tags: dict[str, str] = {}
        self._artifacts: tuple | None = None
        self._best = -1.0
        self._status = ""                # the parent's end status once close() is called; "ended" once written
        self._deadline = 0.0
        self._wait = CLOSE_WAIT
        self._closing = threading.Event()
        self._failing_since = 0.0
        self._provenance: dict[str, str] = {}
        self._notes: list[tuple[dict[str, str], dict[str, str]]] = []
        self.write_error = ""            # a local file write that failed (disk full, read-only): the search stops
        self._thread = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)

    # ---- controller side ----------------------------------------------------------------------------------------
    def open(self, params: dict[str, str], run_id: str = "", entries: Sequence[Trained] = (), logged: int = 0) -> str:
        """Create the experiment and parent run, or on resume reopen ``run_id`` and find which of ``entries`` have
        a whole child run (by ``gp.key``); start the writer thread with the rest queued. ``logged`` (the count the
        checkpoint kept) is not trusted: the store is asked."""
        from mlflow.exceptions import MlflowException
        from mlflow.tracking.context.registry import resolve_tags

        check_server(self.uri)
        fail_fast()
        try:
            self.client = client(self.uri)
            self._provenance = {k: v for k, v in resolve_tags().items() if k.startswith(("mlflow.user", "mlflow.source"))}
            self.experiment_id = new_experiment(self.client, self.experiment, self.uri, self.artifact_root)
            self._check_parent()
            if run_id and self._exists(run_id):
                self.run_id = run_id
                self.client.update_run(run_id, status="RUNNING")
                self.sink = make_sink(self.client, self.experiment_id, run_id)
                pending = self._reconcile(entries)
            else:
                self._create_parent(params)
                self.sink = make_sink(self.client, self.experiment_id, self.run_id)
                pending = list(entries)
        except (MlflowException, OSError) as exc:
            raise TrackingError(f"cannot use the MLflow store at {self.uri}: {first_line(exc)[:300]}; check "
                                "--tracking-uri (is the server running?) or pass --no-tracking") from exc
        self.logged = len(entries) - len(pending)
        self._pending.extend(pending)
        self._thread.start()
        return self.run_id

    def child(self, entry: Trained) -> None:
        self._pending.append(entry)

    def progress(self, step: int, metrics: dict[str, float]) -> None:
        at = int(time.time() * 1000)
        with self._lock:
            self._metrics += [(k, float(v), at, step) for k, v in metrics.items()]

    def artifacts(self, rows: Sequence[Any], fitness: Sequence[float], reference: Any,
                  facts: dict[str, Any] | None = None) -> None:
        """Queue the hall of fame (``rows``, and the ``reference`` seed's row or None), the fitness curve and the
        parent's description (``facts``: status, evaluations, cache_hits, elapsed); only the latest is written."""
        with self._lock:
            self._artifacts = (list(rows), list(fitness), reference, dict(facts or {}))

    def note(self, params: dict[str, str], files: dict[str, str]) -> None:
        """Params and small text files (name -> content) for the parent run, such as the lr tuning table."""
        with self._lock:
            self._notes.append((dict(params), dict(files)))

    def backlog(self) -> int:
        """Trained candidates whose child run is not in MLflow yet."""
        return len(self._pending)

    def close(self, status: str = "FINISHED", wait: float = CLOSE_WAIT) -> bool:
        """Write what is queued, then end the parent run with ``status``. Waits while runs are being written, and
        gives up after ``wait`` seconds without a successful write, or after one more try when the store was
        already failing. True when everything reached MLflow."""
        if not self._thread.is_alive():
            return not self._pending
        self._status, self._wait = status, wait
        self._deadline = time.monotonic() + max(wait - 5.0, 0.0)  # an in-flight write may take up to 5 s more
        self._closing.set()
        while self._thread.is_alive() and time.monotonic() < self._deadline + 5.0:
            self._thread.join(0.2)
        return not self._thread.is_alive() and not self._pending and self._status == "ended"

    # ---- writer thread ------------------------------------------------------------------------------------------
    def _work(self) -> None:
        delay = 0.0  # the backoff after a failed write
        while True:
            if delay and self._closing.is_set():
                time.sleep(max(0.0, min(delay, self._deadline - time.monotonic())))
            elif not self._closing.is_set():
                self._closing.wait(delay or self.flush_every)
            outage = bool(self._failing_since)
            ok = self._flush()
            if self._closing.is_set():
                if ok and self._attempt(lambda: self.client.set_terminated(self.run_id, self._status)):
                    self._status = "ended"
                    return
                if time.monotonic() >= self._deadline or (outage and self._failing_since):
                    return  # what is left waits for --resume
            delay = 0.0 if ok else min(RETRY[1], 2 * delay if delay else RETRY[0])

    def _flush(self) -> bool:
        """Children in order, then the parent's metrics and tags, then its artifacts. False at the first failure."""
        while self._pending:
            batch = [self._record(e) for e in list(self._take())]
            if not self._attempt(lambda: self.sink.write(batch)):
                return False
            self._written(batch)
        with self._lock:
            metrics, tags, arts = self._metrics, dict(self._tags), self._artifacts
            self._metrics = []
        if (metrics or tags) and not self._attempt(lambda: self._log_parent(metrics, tags)):
            with self._lock:
                self._metrics = metrics + self._metrics
            return False
        with self._lock:
            for k in tags:
                if self._tags.get(k) == tags[k]:
                    del self._tags[k]
        if arts is not None:
            if not self._attempt(lambda: self._log_artifacts(*arts)):
                return False
            with self._lock:
                if self._artifacts is arts:
                    self._artifacts = None
        while self._notes:
            if not self._attempt(lambda: self._log_note(*self._notes[0])):
                return False
            with self._lock:
                self._notes.pop(0)
        return True

    def _take(self) -> list[Trained]:
        n = min(self.sink.batch, len(self._pending))
        return [self._pending[i] for i in range(n)]

    def _attempt(self, write: Any) -> bool:
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - tracking must never stop the search; the write is retried
            if isinstance(exc, OSError) and exc.filename and not self.write_error:  # a full disk stops it, though
                self.write_error = f"cannot write {exc.filename} ({exc.strerror})"
            self.failures += 1
            now = time.monotonic()
            self._failing_since = self._failing_since or now
            if self.failures == 1:
                self.first_failure = f"{type(exc).__name__}: {first_line(exc)[:200]}"
            if not self.warned and now - self._failing_since >= OUTAGE:
                self.warned = True
                print(f"warning: the MLflow store at {self.uri} has failed for {now - self._failing_since:.0f} s "
                      f"({first_line(exc)[:160]}); {len(self._pending)} runs queued. The search goes on and writes "
                      "them when the store answers; what is left at the end, --resume writes", file=sys.stderr)
            return False
        self._failing_since = 0.0
        return True

    def _record(self, e: Trained) -> RunRecord:
        rec = self._records.get(e.index)
        if rec is None:
            parent = self._ids.get(e.cand.parent, ("", ""))
            rec = self._records[e.index] = child_record(e, self.run_id, self.experiment_id, self.reference_name,
                                                        self._provenance, parent)
            self.sink.assign(rec)
            if rec.run_id:  # ids known before the write: a parent in the same batch is linked too
                self._ids[rec.key] = (rec.run_id, rec.name)
        return rec

    def _written(self, batch: list[RunRecord]) -> None:
        for rec in batch:
            self._pending.popleft()
            del self._records[rec.index]
            self._ids[rec.key] = (rec.run_id, rec.name)
            self.logged += 1
            with self._lock:
                if rec.tags.get("gp.role") == "reference":
                    self._tags["gp.reference_run_id"] = rec.run_id
                    self._metrics.append(("reference_fitness", round(rec.fitness, 4), rec.end, rec.index + 1))
                if rec.fitness > self._best:
                    self._best = rec.fitness
                    self._tags["gp.best_run_id"] = rec.run_id
        if self._closing.is_set():  # progress: the end waits on
            self._deadline = time.monotonic() + max(self._wait - 5.0, 0.0)

    def _log_parent(self, metrics: list[tuple[str, float, int, int]], tags: dict[str, str]) -> None:
        from mlflow.entities import Metric, RunTag

        items = [Metric(k, v, ts, step) for k, v, ts, step in metrics]
        for i in range(0, max(len(items), 1), 1000):  # log_batch takes at most 1000 metrics
            self.client.log_batch(self.run_id, metrics=items[i:i + 1000],
                                  tags=[RunTag(k, v) for k, v in tags.items()] if i == 0 else [])

    def _log_artifacts(self, rows: list[Any], fitness: list[float], reference: Any, facts: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as d:
            write_csv(rows, Path(d) / "hall_of_fame.csv")
            plot_progress(fitness, reference.score if reference else None, Path(d) / "fitness.png",
                          title=self.name, reference_name=self.reference_name, top=self.top)
            plot_equations(rows, reference, Path(d) / "hall_of_fame.png", reference_name=self.reference_name)
            self.client.log_artifacts(self.run_id, d)
        note = describe_search(self.name, self.experiment_id, rows, reference, facts, self._ids,
                               self.reference_name)
        self.client.set_tag(self.run_id, "mlflow.note.content", note)

    def _log_note(self, params: dict[str, str], files: dict[str, str]) -> None:
        from mlflow.entities import Param

        if params:
            self.client.log_batch(self.run_id, params=[Param(k, v[:PARAM_MAX]) for k, v in params.items()])
        with tempfile.TemporaryDirectory() as d:
            for name, text in files.items():
                (Path(d) / name).write_text(text, encoding="utf-8")
            self.client.log_artifacts(self.run_id, d)

    # ---- opening ------------------------------------------------------------------------------------------------
    def _create_parent(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        nest = {"mlflow.parentRunId": self.parent_run_id} if self.parent_run_id else {}
        run = self.client.create_run(self.experiment_id, run_name=f"search {self.name}",
                                     tags={**self._provenance, **nest, "gp.kind": "search",
                                           "mlflow.note.content": f"Search `{self.name}`: running."})
        self.run_id = run.info.run_id
        items = [Param(k, v[:PARAM_MAX]) for k, v in relevant_params(params).items()]
        for i in range(0, len(items), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def _check_parent(self) -> None:
        """MLflow nests runs of one experiment only: the parent must be there."""
        if not self.parent_run_id:
            return
        if not self._exists(self.parent_run_id):
            raise TrackingError(f"tracking.parent_run {self.parent_run_id!r} is no run of {self.uri}; give the id of "
                                "a live run, or leave it empty")
        where = self.client.get_run(self.parent_run_id).info.experiment_id
        if where != self.experiment_id:
            name = self.client.get_experiment(where).name
            raise TrackingError(f"tracking.parent_run {self.parent_run_id} is in experiment {name!r}, not "
                                f"{self.experiment!r}: set tracking.experiment = {name!r} (MLflow nests runs of one "
                                "experiment only)")

    def _exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException:
            return False

    def _reconcile(self, entries: Sequence[Trained]) -> list[Trained]:
        """The entries without a whole child run. A run cut short (no ``evaluation``, e.g. an HTTP write killed
        between its calls) and a second run of the same key are deleted; a whole run left RUNNING is ended."""
        names = {e.cand.key: e for e in entries}
        whole: set[str] = set()
        for key, rid, status, complete in sorted(self.sink.children(self.run_id), key=lambda c: not c[3]):
            if not complete or key in whole:
                self.client.delete_run(rid)
                continue
            whole.add(key)
            e = names.get(key)
            if e is not None:
                self._ids[key] = (rid, run_name(e, self.reference_name))
            if status == "RUNNING":
                failed = e is not None and e.result.status in FAILED
                self.client.set_terminated(rid, "FAILED" if failed else "FINISHED")
        return [e for e in entries if e.cand.key not in whole]
