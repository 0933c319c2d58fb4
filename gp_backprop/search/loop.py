"""The steady-state search loop (paper §3.2): keep every worker busy, take results back as they come, and record
each one (journal at once, checkpoint and MLflow off the critical path) until the budget is spent.

Finished candidates are told to the controller in proposal order (one finished before an older one waits, journaled,
for its turn), and after telling candidate c the loop proposes until ``lookahead`` candidates are in flight. The
controller thus sees the same events in the same order whatever the timing, so a fixed seed replays exactly and a
resumed search (journal replayed, in-flight candidates retrained) continues as the unbroken one.

Per candidate told the loop does: ``tell`` the controller, journal the result, queue it for MLflow, propose and submit
the next candidates. Everything else (snapshots, progress metrics, artifacts) runs on timers.
"""
from __future__ import annotations

import heapq
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

import primitives as P

from gp_backprop.config import SearchConfig, flatten
from gp_backprop.parallel import Backend, make_backend
from gp_backprop.search.checkpoint import CheckpointError, RunFolder
from gp_backprop.search.controller import Candidate, Controller
from gp_backprop.search.lock import SearchLock
from gp_backprop.search.reference import tuned_lr
from gp_backprop.search.resume import Restored, held_json, prepare, restore
from gp_backprop.search.scoring import Finished, Job, Scorer, lr_walk
from gp_backprop.search.hall_of_fame import hall_of_fame
from gp_backprop.tracking import Tracker, check_server

__all__ = ["Outcome", "run_search", "lookahead"]

TICK = 0.25  # seconds the loop waits for results before it checks timers, Ctrl-C and timeouts
CHUNKS_AHEAD = 3  # chunks of first trainings per worker in flight (benchmarks/ordered_release.py: 2 left workers idle)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and what a scheduler or `docker stop` sends
BROKEN = ("error", "diverged")  # a reference seed that ends so means the task itself cannot train


@dataclass
class Outcome:
    """How a search ended, for the summary."""

    controller: Controller
    status: str                   # finished | time budget | exhausted | interrupted | task error | write error
    elapsed: float                # seconds over all sessions
    session_evals: int
    session_seconds: float
    utilization: float            # worker seconds inside evaluate / (session wall time x workers)
    workers: int                  # the most workers seen during the session
    run_id: str = ""
    experiment_id: str = ""
    tracking_failures: int = 0
    runs_tracked: int = 0         # child runs in MLflow at the end
    runs_waiting: int = 0         # trained candidates whose run did not reach MLflow: --resume writes them
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""             # why, for statuses "task error" and "write error"
    signum: int = 0               # the signal that stopped it, for status "interrupted"
    held: int = 0                 # candidates in flight that finished, waiting for an older one: kept, not retrained

    @property
    def evals_per_min(self) -> float:
        return 60.0 * self.session_evals / self.session_seconds if self.session_seconds > 0 else 0.0


def run_search(cfg: SearchConfig, *, resume: bool = False, overwrite: bool = False, repair: bool = False,
               progress: bool = True, evaluate_backend: Backend | None = None) -> Outcome:
    """Run (or continue) the search ``cfg`` describes, holding its folder's lock throughout (``SearchBusy`` if
    another live process holds it). ``evaluate_backend`` replaces the configured workers."""
    import torch
    torch.set_num_threads(1)  # the controller's feasibility probes are tiny; threads would only compete with workers
    Controller(cfg.space, cfg.seed)  # settings only the controller checks (selection) fail before any file is made
    if cfg.tracking.enabled:
        check_server(cfg.tracking.uri)  # a server that is not there fails in seconds, before the lock makes a file
    with SearchLock(cfg.run_dir, cfg.name):
        folder, saved = prepare(cfg, resume, overwrite, repair)
        state = restore(cfg, folder, saved, repair)
        tracker = None
        if cfg.tracking.enabled:
            tracker = Tracker(cfg.tracking.uri, cfg.name, cfg.tracking.artifacts, cfg.space.reference,
                              cfg.space.population, experiment=cfg.tracking.experiment,
                              parent_run_id=cfg.tracking.parent_run)
            state.run_id = tracker.open(flatten(cfg.to_dict()), state.run_id, state.controller.population,
                                        state.logged)
        p = cfg.parallel
        backend = evaluate_backend or make_backend(p.backend, cfg.evaluation.function, cfg.task, workers=p.workers,
                                                   timeout=cfg.evaluation.timeout, scheduler=p.scheduler,
                                                   members=p.chunk)
        try:
            backend.start()
            _keep_lookahead(state, lookahead(cfg, backend))   # before tuning: a Dask chunk grows with results
            lr, tuning = tuned_lr(cfg, backend, saved[0] if saved else None, tracker)
            loop = _Loop(cfg, state, folder, backend, tracker, progress, lr, tuning)
            if saved is None:
                folder.reset()
                loop.snapshot("running")
            return loop.run()
        except BaseException as exc:
            if tracker is not None:  # the parent run says how the search ended, even when it ended in an exception
                tracker.close("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            backend.close()
            folder.close()


def lookahead(cfg: SearchConfig, backend: Backend) -> int:
    """Candidates in flight after each one told: enough that their first trainings fill every worker's chunk
    ``CHUNKS_AHEAD`` times over (one training, one waiting, one more while an older candidate's later stage, e.g.
    its extra seeds, holds the proposals back). A function of the settings (and of the workers a 0 or a Dask
    scheduler gives), so that a search replays; the checkpoint keeps it."""
    f = cfg.fitness
    first = Scorer(cfg.task, cfg.task.lr, lr_walk(f), f.extra_seeds, Candidate.promotes).start(
        Candidate(0, P.SEEDS[cfg.space.reference], "probe"))
    return max(1, math.ceil(CHUNKS_AHEAD * backend.capacity() * max(1, backend.depth) / max(1, len(first))))


def _keep_lookahead(state: Restored, now: int) -> None:
    """A new search takes ``now``; a resumed one keeps its own, so that it continues as it began."""
    if state.lookahead and state.lookahead != now:
        print(f"note: this search keeps {state.lookahead} candidates in flight, as it began, so that it replays "
              f"exactly (with these workers it would start with {now})", file=sys.stderr)
    state.lookahead = state.lookahead or now


class _Loop:
    def __init__(self, cfg: SearchConfig, state: Restored, folder: RunFolder, backend: Backend, tracker: Any,
                 progress: bool, lr: float, tuning: dict[str, Any] | None) -> None:
        ctl = state.controller
        self.cfg, self.ctl, self.folder, self.backend, self.tracker = cfg, ctl, folder, backend, tracker
        self.run_id, self.lr, self.tuning = state.run_id, lr, tuning
        self.t0 = time.monotonic() - state.elapsed
        f = cfg.fitness
        self.scorer = Scorer(cfg.task, lr, lr_walk(f), f.extra_seeds, Candidate.promotes, f.lr_inherit)
        self.lookahead = state.lookahead
        self.held = state.held    # finished candidates waiting for every older one to be told
        # Jobs by candidate, oldest first: the candidate whose turn it is finishes soonest, the others wait less.
        self.jobs: list[tuple[int, int, Job]] = []
        self.out = 0              # jobs submitted whose result the loop has not taken yet
        for cand in sorted(ctl.inflight.values(), key=lambda c: c.cid):  # proposed before a stop: train them now
            if cand.cid not in self.held:
                self._queue(self.scorer.start(cand))
        self.stop = ""
        self.message = ""
        self.signum = 0
        self.busy = 0.0
        self.workers = 0          # the most workers seen: a Dask worker restarted after a timeout is briefly missing
        self.session_start = time.monotonic()
        self.session_base = len(ctl.population)
        self.last = {"snapshot": time.monotonic(), "metrics": 0.0, "bar": 0.0, "artifacts": time.monotonic()}
        self.dirty = False
        self.bar = _bar(cfg, ctl, progress)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def run(self) -> Outcome:
        in_main = _main_thread()
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} if in_main else {}
        for sig in previous:
            signal.signal(sig, self._interrupt)
        self.session_start = time.monotonic()
        if not self.ctl.inflight:
            self.ctl.dry = False   # no result will come to end a dry spell: a search resumed after one asks again
        try:
            self._fill()        # what a stop cut short, or the first proposals
            self._release()     # candidates that finished before a stop, whose turn has come
            self._submit()
            while self.ctl.inflight and not self.stop:
                for done in self.backend.wait(TICK):
                    if self.stop in ("interrupted", "write error"):
                        break  # results after a stop are not recorded: their candidates re-run on --resume
                    self.out -= 1
                    self._submit()  # the freed worker takes its waiting job before any bookkeeping
                    self.busy += done.busy
                    more, finished = self.scorer.done(done.cid, done.result, done.busy)
                    self._queue(more)
                    if finished is not None:
                        self._finished(finished)
                    self._submit()
                self._timers()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        status = self.stop or ("finished" if self.ctl.next_cid >= self.cfg.budget.max_evals else
                               "time budget" if self._time_up() else "exhausted")
        return self._finish(status)

    def _interrupt(self, signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM: stop after this tick, with a final checkpoint and the summary."""
        self.stop, self.signum = "interrupted", signum
        # A second signal of the same kind aborts at once (Ctrl-C as KeyboardInterrupt, SIGTERM as the default).
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    def _write_failed(self, why: Any) -> None:
        """A write to the journal, the checkpoint or the artifacts failed (disk full, read-only): stop as on
        SIGTERM. The first failure is the one reported."""
        if self.stop != "write error":
            self.stop, self.message = "write error", str(why)

    def _append(self, event: dict[str, Any] | str) -> bool:
        try:
            self.folder.append(event)
            return True
        except CheckpointError as exc:
            self._write_failed(exc)
            return False

    def _time_up(self) -> bool:
        return 0 < self.cfg.budget.time_budget <= self.elapsed()

    def _fill(self) -> None:
        """Propose until ``lookahead`` candidates are in flight, or the budget says stop, and journal how many
        proposals that took.

        Called only after a candidate is told (and when a session starts), never on the clock: a proposal then
        misses the results of the candidates in flight, as every asynchronous proposal does (paper §3.2), but the
        same ones in every run, so runs and resumes replay exactly. Proposing ahead takes the proposal (selection,
        mutation, feasibility probes: a few milliseconds) off the path between a worker's result and its next job."""
        ctl, calls = self.ctl, 0
        while (len(ctl.inflight) < self.lookahead and not ctl.dry and ctl.next_cid < self.cfg.budget.max_evals
               and not self.stop and not self._time_up()):
            calls += 1
            cand = ctl.propose()
            if cand is None:
                break
            self._queue(self.scorer.start(cand))
        if calls:
            self._append({"p": calls})

    def _queue(self, jobs: list[Job]) -> None:
        for job in jobs:
            heapq.heappush(self.jobs, (job.cid, job.jid, job))

    def _submit(self) -> None:
        self.workers = max(self.workers, self.backend.capacity())
        cap = self.backend.capacity() * self.backend.depth
        # Counted here, per result taken, not by the backend: one wait() may return several results, and the
        # backend counts them all as done before the loop has taken the first.
        while self.jobs and self.out < cap:
            job = heapq.heappop(self.jobs)[2]
            self.backend.submit(job.jid, job.text, job.task)
            self.out += 1

    def _finished(self, done: Finished) -> None:
        """A candidate's scoring is complete: told now if every older one is, else held (and journaled, so that a
        kill does not lose it) until they are."""
        if done.cid not in self.ctl.inflight or done.cid in self.held:
            return
        self.held[done.cid] = done
        if done.cid != min(self.ctl.inflight) and not self._append({"h": held_json(done)}):
            return
        self._release()

    def _release(self) -> None:
        """Tell the held candidates whose turn has come, oldest first, each followed by its proposals."""
        while self.ctl.inflight and (head := min(self.ctl.inflight)) in self.held and not self.stop:
            self._record(self.held.pop(head))
            self._fill()

    def _record(self, done: Finished) -> None:
        entry = self.ctl.tell(done.cid, done.result, done.busy, self.elapsed(), time.time(), done.score)
        self.dirty = True
        if not self._append(f'{{"r":{self.ctl.entry_json(entry.index)}}}'):
            return  # the final checkpoint still holds it, if it can be written; else its candidate trains again
        if entry.cand.origin == "reference" and entry.result.status in BROKEN:
            # Backprop itself cannot train (it raises, or diverges): the task is broken (model, data, lr), and so
            # would be every candidate.
            self.stop, self.message = "task error", f"status {entry.result.status}: {entry.result.message}"
        if self.tracker is not None:
            self.tracker.child(entry)
        if self.bar is not None:
            self.bar.update(1)

    def _timers(self) -> None:
        now, t = time.monotonic(), self.cfg.tracking
        failure = self.folder.failure or (self.tracker.write_error if self.tracker is not None else "")
        if failure:
            self._write_failed(failure)
            return
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
            self.bar.set_postfix_str(f"best {stats.get('best_fitness', 0.0):.4f}, cache hits {self.ctl.cache_hits} "
                                     f"({self.ctl.function_hits} same function), {stats['evals_per_min']:.0f} "
                                     f"candidates/min, {self.scorer.trainings} trainings", refresh=False)
        if self.tracker is not None and now - self.last["artifacts"] >= t.artifacts_every:
            self.last["artifacts"] = now
            self._artifacts()

    def stats(self) -> dict[str, float]:
        ctl, secs = self.ctl, max(time.monotonic() - self.session_start, 1e-9)
        out = {"evals_per_min": 60.0 * (len(ctl.population) - self.session_base) / secs,
               "utilization": self.busy / (secs * max(self.workers, self.backend.capacity(), 1)),
               "cache_hits": float(ctl.cache_hits), "function_hits": float(ctl.function_hits),
               "cache_hit_rate": ctl.cache_hits / max(1, ctl.proposals),
               "trainings": float(self.scorer.trainings), "epochs": float(self.scorer.epochs),
               "in_flight": float(len(ctl.inflight))}
        if ctl.ranked:
            out["best_fitness"] = ctl.ranked[0].fitness
            out["median_fitness"] = ctl.ranked[len(ctl.ranked) // 2].fitness
            out["top_n_median_fitness"] = ctl.ranked[min(len(ctl.ranked), self.cfg.space.population) // 2].fitness
        return out

    def _artifacts(self, status: str = "running") -> None:
        rows, ref = hall_of_fame(self.ctl, self.cfg.tracking.hall_of_fame)
        facts = {"status": status, "evaluations": len(self.ctl.population), "cache_hits": self.ctl.cache_hits,
                 "elapsed": self.elapsed()}
        self.tracker.artifacts(rows, [e.fitness for e in self.ctl.population], ref, facts)

    def snapshot(self, status: str, background: bool = False) -> None:
        fields = {"status": status, "elapsed": self.elapsed(), "config": self.cfg.to_dict(),
                  "tracking": {"uri": self.cfg.tracking.uri, "experiment": self.cfg.name, "run_id": self.run_id,
                               "logged": self.tracker.logged if self.tracker is not None else 0},
                  "lr": self.lr, "tuning": self.tuning, "lookahead": self.lookahead,
                  "held": [held_json(done) for done in self.held.values()]}
        try:
            if self.folder.save(fields, self.ctl.state_json(), background=background):
                self.last["snapshot"] = time.monotonic()
                self.dirty = False
        except CheckpointError as exc:
            self._write_failed(exc)

    def _finish(self, status: str) -> Outcome:
        stats = self.stats()
        session = time.monotonic() - self.session_start
        if self.bar is not None:
            self.bar.close()
        failures, exp_id, tracked, waiting = 0, "", 0, 0
        if self.tracker is not None:
            if self.ctl.population:
                self.tracker.progress(len(self.ctl.population), stats)
                self._artifacts(status)
            if self.tracker.backlog() > 200:
                print(f"Writing {self.tracker.backlog()} queued runs to MLflow...", file=sys.stderr)
            ended = "FINISHED" if status in ("finished", "time budget", "exhausted") else \
                "FAILED" if status == "task error" else "KILLED"
            self.tracker.close(ended)
            failures, exp_id = self.tracker.failures, self.tracker.experiment_id
            tracked, waiting = self.tracker.logged, self.tracker.backlog()
        self.snapshot({"interrupted": "interrupted", "write error": "interrupted", "task error": "failed"}
                      .get(status, "finished"))
        self.folder.close()
        if self.folder.failure is not None:  # the final checkpoint could not be written either
            self._write_failed(self.folder.failure)
        if self.stop == "write error":
            status = "write error"
        return Outcome(self.ctl, status, self.elapsed(), len(self.ctl.population) - self.session_base, session,
                       stats["utilization"], self.workers, self.run_id, exp_id, failures, tracked, waiting,
                       stats, self.message, self.signum, len(self.held))


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _bar(cfg: SearchConfig, ctl: Controller, progress: bool) -> Any:
    if not progress:
        return None
    return tqdm(total=cfg.budget.max_evals, initial=len(ctl.population), unit="eval", dynamic_ncols=True,
                mininterval=0.5, desc=cfg.name, file=sys.stderr)
