"""The steady-state search loop (paper §3.2): keep every worker busy, take results back as they come, and record
each one (journal at once, checkpoint and MLflow off the critical path) until the budget is spent.

Per result the loop does: ``tell`` the controller, journal the result, queue it for MLflow, propose and submit the
next candidates. Everything else (snapshots, progress metrics, artifacts) runs on timers.
"""
from __future__ import annotations

import collections
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from evaluators.task import EvalResult

from gp_backprop.config import ConfigError, SearchConfig, build, flatten, search_identity
from gp_backprop.parallel import Backend, make_backend
from gp_backprop.search.checkpoint import RunFolder
from gp_backprop.search.controller import Controller
from gp_backprop.search.hall_of_fame import hall_of_fame
from gp_backprop.tracking import Tracker

__all__ = ["Outcome", "run_search", "prepare"]

TICK = 0.25  # seconds the loop waits for results before it checks timers, Ctrl-C and timeouts


@dataclass
class Outcome:
    """How a search ended, for the summary."""

    controller: Controller
    status: str                   # finished | time budget | exhausted | interrupted | task error
    elapsed: float                # seconds over all sessions
    session_evals: int
    session_seconds: float
    utilization: float            # worker seconds inside evaluate / (session wall time x workers)
    workers: int
    run_id: str = ""
    experiment_id: str = ""
    tracking_failures: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""             # why, for status "task error"

    @property
    def evals_per_min(self) -> float:
        return 60.0 * self.session_evals / self.session_seconds if self.session_seconds > 0 else 0.0


Saved = tuple[dict[str, Any], list[dict[str, Any]]]  # a snapshot and the journal events after it


def prepare(cfg: SearchConfig, resume: bool, overwrite: bool) -> tuple[RunFolder, Saved | None]:
    """Check that the search can start here, and read its checkpoint when resuming."""
    folder = RunFolder(cfg.run_dir)
    if resume:
        snap, events = folder.load()
        old = search_identity(build([], base=snap["config"]))
        new = search_identity(cfg)
        diff = [k for k in new if old.get(k) != new[k]]
        if diff:
            k = diff[0]
            raise ConfigError(f"--resume: {k} is {old.get(k)!r} in the checkpoint but {new[k]!r} now; drop that "
                              "setting to continue, or start a new search with another --name")
        return folder, (snap, events)
    if folder.exists() and not overwrite and folder.read_snapshot().get("status") in ("running", "interrupted"):
        raise ConfigError(f"search {cfg.name!r} has an unfinished checkpoint at {folder.path}; add --resume to "
                          "continue it, or --overwrite to start again (or pick another --name)")
    return folder, None


def run_search(cfg: SearchConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True,
               evaluate_backend: Backend | None = None) -> Outcome:
    """Run (or continue) the search ``cfg`` describes. ``evaluate_backend`` replaces the configured workers."""
    import torch
    torch.set_num_threads(1)  # the controller's feasibility probes are tiny; threads would only compete with workers
    folder, saved = prepare(cfg, resume, overwrite)
    ctl, elapsed0, logged, run_id = _restore(cfg, saved)

    tracker = None
    if cfg.tracking.enabled:
        tracker = Tracker(cfg.tracking.uri, cfg.name, cfg.tracking.artifacts, cfg.space.reference,
                          cfg.space.population)
        run_id = tracker.open(flatten(cfg.to_dict()), run_id, ctl.population, logged)
    p = cfg.parallel
    backend = evaluate_backend or make_backend(p.backend, cfg.evaluation.function, cfg.task, workers=p.workers,
                                               timeout=cfg.evaluation.timeout, scheduler=p.scheduler)
    loop = _Loop(cfg, ctl, folder, backend, tracker, elapsed0, run_id, progress)
    try:
        backend.start()
        if saved is None:
            folder.reset()
            loop.snapshot("running")
        return loop.run()
    finally:
        backend.close()
        folder.close()


def _restore(cfg: SearchConfig, saved: Saved | None) -> tuple[Controller, float, int, str]:
    """The controller where the checkpoint and journal left it, the elapsed time, and the tracking position."""
    if saved is None:
        return Controller(cfg.space, cfg.seed), 0.0, 0, ""
    snap, events = saved
    ctl = Controller.from_state(cfg.space, cfg.seed, snap["controller"])
    elapsed = snap["elapsed"]
    for ev in events:  # replay: the same results in the same order give the same proposals (STYLE §8)
        if "r" in ev:
            r = ev["r"]
            ctl.tell(r["cand"]["cid"], EvalResult.from_dict(r["result"]), r["busy"], r["t"], r["at"])
            elapsed = max(elapsed, r["t"])
        else:
            for _ in range(ev["p"]):
                ctl.propose()
    track = snap.get("tracking", {})
    return ctl, elapsed, track.get("logged", 0), track.get("run_id", "")


class _Loop:
    def __init__(self, cfg: SearchConfig, ctl: Controller, folder: RunFolder, backend: Backend, tracker: Any,
                 elapsed0: float, run_id: str, progress: bool) -> None:
        self.cfg, self.ctl, self.folder, self.backend, self.tracker = cfg, ctl, folder, backend, tracker
        self.run_id = run_id
        self.t0 = time.monotonic() - elapsed0
        self.pending = collections.deque(sorted(ctl.inflight.values(), key=lambda c: c.cid))
        self.stop = ""
        self.message = ""
        self.busy = 0.0
        self.session_start = time.monotonic()
        self.session_base = len(ctl.population)
        self.last = {"snapshot": time.monotonic(), "metrics": 0.0, "bar": 0.0, "artifacts": time.monotonic()}
        self.dirty = False
        self.bar = _bar(cfg, ctl, progress)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def run(self) -> Outcome:
        previous = signal.getsignal(signal.SIGINT)
        in_main = _main_thread()
        if in_main:
            signal.signal(signal.SIGINT, self._interrupt)
        self.session_start = time.monotonic()
        try:
            self._fill()
            while self.ctl.inflight and not self.stop:
                for done in self.backend.wait(TICK):
                    if self.stop == "interrupted":
                        break  # results after Ctrl-C are not recorded: their candidates re-run on --resume
                    self._submit()  # the freed worker takes its waiting candidate before any bookkeeping
                    self._record(done.cid, done.result, done.busy)
                    self._fill()
                self._timers()
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous)
        status = self.stop or ("finished" if self.ctl.next_cid >= self.cfg.budget.max_evals else
                               "time budget" if self._time_up() else "exhausted")
        return self._finish(status)

    def _interrupt(self, signum: int, frame: Any) -> None:
        self.stop = "interrupted"
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C aborts at once

    def _time_up(self) -> bool:
        return 0 < self.cfg.budget.time_budget <= self.elapsed()

    def _fill(self) -> None:
        """Propose until every worker has its candidates (one running and one waiting for loky; two chunks for
        Dask) or the budget says stop, journal how many proposals that took, and submit to free workers.

        Proposing ahead takes the proposal (selection, mutation, feasibility probes: a few milliseconds) off the
        path between a worker's result and its next candidate, where on 2 cores it would cost a few percent of a
        digits training (benchmarks/README.md).
        A proposal then misses the results of the candidates still in flight, as every asynchronous proposal does
        (paper §3.2); with one worker it misses one result, the same one in every run, so runs and resumes replay
        exactly."""
        ctl, calls = self.ctl, 0
        ahead = self.backend.capacity() * max(2, self.backend.depth)
        while (len(ctl.inflight) < ahead and ctl.next_cid < self.cfg.budget.max_evals and not self.stop
               and not self._time_up()):
            calls += 1
            cand = ctl.propose()
            if cand is None:
                break
            self.pending.append(cand)
        if calls:
            self.folder.append({"p": calls})
        self._submit()

    def _submit(self) -> None:
        cap = self.backend.capacity() * self.backend.depth
        while self.pending and self.backend.running() < cap:
            c = self.pending.popleft()
            self.backend.submit(c.cid, c.text)

    def _record(self, cid: int, result: EvalResult, busy: float) -> None:
        if cid not in self.ctl.inflight:
            return
        entry = self.ctl.tell(cid, result, busy, self.elapsed(), time.time())
        self.folder.append(f'{{"r":{self.ctl.entry_json(entry.index)}}}')
        self.busy += busy
        self.dirty = True
        if entry.cand.origin == "reference" and entry.result.status == "error":
            # Backprop itself cannot train: the task is broken (model, data), and so would be every candidate.
            self.stop, self.message = "task error", entry.result.message
        if self.tracker is not None:
            self.tracker.child(entry)
        if self.bar is not None:
            self.bar.update(1)

    def _timers(self) -> None:
        now, t = time.monotonic(), self.cfg.tracking
        # Snapshots of a large population take a while to write; keep them below ~10% of the time (the journal
        # already holds every result, so a later snapshot loses nothing).
        if self.dirty and now - self.last["snapshot"] >= max(t.checkpoint_every, 10 * self.folder.write_seconds):
            self.snapshot("running", background=True)
        if self.tracker is not None and now - self.last["metrics"] >= t.metrics_every and self.ctl.population:
            self.last["metrics"] = now
            self.tracker.progress(len(self.ctl.population), self.stats())
        if self.bar is not None and now - self.last["bar"] >= 1.0:
            self.last["bar"] = now
            stats = self.stats()
            self.bar.set_postfix_str(f"best {stats.get('best_fitness', 0.0):.4f}, cache hits {self.ctl.cache_hits}, "
                                     f"{stats['evals_per_min']:.0f} evals/min", refresh=False)
        if self.tracker is not None and now - self.last["artifacts"] >= t.artifacts_every:
            self.last["artifacts"] = now
            self._artifacts()

    def stats(self) -> dict[str, float]:
        ctl, secs = self.ctl, max(time.monotonic() - self.session_start, 1e-9)
        out = {"evals_per_min": 60.0 * (len(ctl.population) - self.session_base) / secs,
               "utilization": self.busy / (secs * max(self.backend.capacity(), 1)),
               "cache_hits": float(ctl.cache_hits), "in_flight": float(len(ctl.inflight))}
        if ctl.ranked:
            out["best_fitness"] = ctl.ranked[0].fitness
            out["median_fitness"] = ctl.ranked[len(ctl.ranked) // 2].fitness
            out["top_n_median_fitness"] = ctl.ranked[min(len(ctl.ranked), self.cfg.space.population) // 2].fitness
        return out

    def _artifacts(self) -> None:
        rows, _ = hall_of_fame(self.ctl, self.cfg.tracking.hall_of_fame)
        ref = self.ctl.reference()
        self.tracker.artifacts(rows, [e.fitness for e in self.ctl.population], ref.fitness if ref else None)

    def snapshot(self, status: str, background: bool = False) -> None:
        fields = {"status": status, "elapsed": self.elapsed(), "config": self.cfg.to_dict(),
                  "tracking": {"uri": self.cfg.tracking.uri, "experiment": self.cfg.name, "run_id": self.run_id,
                               "logged": self.tracker.logged if self.tracker is not None else 0}}
        if self.folder.save(fields, self.ctl.state_json(), background=background):
            self.last["snapshot"] = time.monotonic()
            self.dirty = False

    def _finish(self, status: str) -> Outcome:
        stats = self.stats()
        session = time.monotonic() - self.session_start
        if self.bar is not None:
            self.bar.close()
        failures, exp_id = 0, ""
        if self.tracker is not None:
            if self.ctl.population:
                self.tracker.progress(len(self.ctl.population), stats)
                self._artifacts()
            if self.tracker.backlog() > 200:
                print(f"Writing {self.tracker.backlog()} queued runs to MLflow...", file=sys.stderr)
            self.tracker.close({"interrupted": "KILLED", "task error": "FAILED"}.get(status, "FINISHED"))
            failures, exp_id = self.tracker.failures, self.tracker.experiment_id
        self.snapshot({"interrupted": "interrupted", "task error": "failed"}.get(status, "finished"))
        return Outcome(self.ctl, status, self.elapsed(), len(self.ctl.population) - self.session_base, session,
                       stats["utilization"], self.backend.capacity(), self.run_id, exp_id, failures, stats,
                       self.message)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _bar(cfg: SearchConfig, ctl: Controller, progress: bool) -> Any:
    if not progress:
        return None
    return tqdm(total=cfg.budget.max_evals, initial=len(ctl.population), unit="eval", dynamic_ncols=True,
                mininterval=0.5, desc=cfg.name, file=sys.stderr)
