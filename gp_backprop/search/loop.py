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

from gp_backprop.config import ConfigError, SearchConfig, flatten, search_identity
from gp_backprop.parallel import Backend, make_backend
from gp_backprop.search.checkpoint import CheckpointError, RunFolder
from gp_backprop.search.controller import Controller, Score
from gp_backprop.search.lock import SearchLock
from gp_backprop.search.reference import tuned_lr
from gp_backprop.search.scoring import Finished, Job, Scorer, lr_walk
from gp_backprop.search.hall_of_fame import hall_of_fame
from gp_backprop.tracking import Tracker, check_server

__all__ = ["Outcome", "run_search", "prepare"]

TICK = 0.25  # seconds the loop waits for results before it checks timers, Ctrl-C and timeouts
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

    @property
    def evals_per_min(self) -> float:
        return 60.0 * self.session_evals / self.session_seconds if self.session_seconds > 0 else 0.0


Saved = tuple[dict[str, Any], list[dict[str, Any]]]  # a snapshot and the journal events after it


def prepare(cfg: SearchConfig, resume: bool, overwrite: bool, repair: bool = False
            ) -> tuple[RunFolder, Saved | None]:
    """Check that the search can start here, and read its checkpoint when resuming (the caller holds the lock).
    ``repair``: cut a corrupt journal before its first bad line instead of refusing it."""
    folder = RunFolder(cfg.run_dir)
    if resume:
        snap, events = folder.load(repair=repair)
        old = search_identity(folder.config(snap))
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
        ctl, elapsed0, logged, run_id = _restore(cfg, folder, saved, repair)
        tracker = None
        if cfg.tracking.enabled:
            tracker = Tracker(cfg.tracking.uri, cfg.name, cfg.tracking.artifacts, cfg.space.reference,
                              cfg.space.population, experiment=cfg.tracking.experiment,
                              parent_run_id=cfg.tracking.parent_run)
            run_id = tracker.open(flatten(cfg.to_dict()), run_id, ctl.population, logged)
        p = cfg.parallel
        backend = evaluate_backend or make_backend(p.backend, cfg.evaluation.function, cfg.task, workers=p.workers,
                                                   timeout=cfg.evaluation.timeout, scheduler=p.scheduler,
                                                   members=p.chunk)
        try:
            backend.start()
            lr, tuning = tuned_lr(cfg, backend, saved[0] if saved else None, tracker)
            loop = _Loop(cfg, ctl, folder, backend, tracker, elapsed0, run_id, progress, lr, tuning)
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


def _restore(cfg: SearchConfig, folder: RunFolder, saved: Saved | None, repair: bool
             ) -> tuple[Controller, float, int, str]:
    """The controller where the checkpoint and journal left it, the elapsed time, and the tracking position."""
    if saved is None:
        ctl = Controller(cfg.space, cfg.seed)
        ctl.screening = _screening(cfg)
        return ctl, 0.0, 0, ""
    snap, events = saved
    try:
        ctl = Controller.from_state(cfg.space, cfg.seed, snap["controller"])
        ctl.screening = _screening(cfg)   # before the replay: a replayed proposal gets the stops it had
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{folder.snapshot_path}: its controller state is malformed ({type(exc).__name__}: "
                              f"{exc}); restore it from a backup, or start over with --overwrite") from None
    elapsed = snap["elapsed"]
    for i, ev in enumerate(events):  # replay: the same results in the same order give the same proposals (STYLE §8)
        try:
            if "r" in ev:
                r = ev["r"]
                score = Score.from_dict(r["score"]) if "score" in r else None
                ctl.tell(r["cand"]["cid"], EvalResult.from_dict(r["result"]), r["busy"], r["t"], r["at"], score)
                elapsed = max(elapsed, r["t"])
            else:
                for _ in range(ev["p"]):
                    ctl.propose()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            line = folder.line_of(i)
            if not repair:
                raise CheckpointError(f"{folder.journal_path} line {line} does not follow from the checkpoint "
                                      f"({type(exc).__name__}: {exc}); add --repair to keep the lines before it and "
                                      "drop the rest") from None
            folder.cut(i)
            return _restore(cfg, folder, (snap, events[:i]), repair)
    track = snap.get("tracking", {})
    return ctl, elapsed, track.get("logged", 0), track.get("run_id", "")


class _Loop:
    def __init__(self, cfg: SearchConfig, ctl: Controller, folder: RunFolder, backend: Backend, tracker: Any,
                 elapsed0: float, run_id: str, progress: bool, lr: float, tuning: dict[str, Any] | None) -> None:
        self.cfg, self.ctl, self.folder, self.backend, self.tracker = cfg, ctl, folder, backend, tracker
        self.run_id, self.lr, self.tuning = run_id, lr, tuning
        self.t0 = time.monotonic() - elapsed0
        f = cfg.fitness
        self.scorer = Scorer(cfg.task, lr, lr_walk(f), f.extra_seeds, ctl.would_enter_top, f.lr_inherit)
        self.jobs: collections.deque[Job] = collections.deque()
        self.out = 0              # jobs submitted whose result the loop has not taken yet
        for cand in sorted(ctl.inflight.values(), key=lambda c: c.cid):  # proposed before a stop: train them now
            self.jobs.extend(self.scorer.start(cand))
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
        try:
            self._fill()
            while self.ctl.inflight and not self.stop:
                for done in self.backend.wait(TICK):
                    if self.stop in ("interrupted", "write error"):
                        break  # results after a stop are not recorded: their candidates re-run on --resume
                    self.out -= 1
                    self._submit()  # the freed worker takes its waiting job before any bookkeeping
                    self.busy += done.busy
                    more, finished = self.scorer.done(done.cid, done.result, done.busy)
                    self.jobs.extendleft(reversed(more))  # a promoted candidate's seeds go first: it finishes sooner
                    if finished is not None:
                        self._record(finished)
                    self._fill()
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
        """Propose until every worker has a job running and one waiting (two chunks of them for Dask), or the
        budget says stop, journal how many proposals that took, and submit to free workers.

        Proposing ahead takes the proposal (selection, mutation, feasibility probes: a few milliseconds) off the
        path between a worker's result and its next job. A proposal then misses the results of the candidates
        still in flight, as every asynchronous proposal does (paper §3.2); with one worker it misses the same
        results in every run, so runs and resumes replay exactly."""
        ctl, calls = self.ctl, 0
        ahead = self.backend.capacity() * max(1, self.backend.depth)
        while (len(self.jobs) < ahead and ctl.next_cid < self.cfg.budget.max_evals and not self.stop
               and not self._time_up()):
            calls += 1
            cand = ctl.propose()
            if cand is None:
                break
            self.jobs.extend(self.scorer.start(cand))
        if calls and not self._append({"p": calls}):
            return
        self._submit()

    def _submit(self) -> None:
        self.workers = max(self.workers, self.backend.capacity())
        cap = self.backend.capacity() * self.backend.depth
        # Counted here, per result taken, not by the backend: one wait() may return several results, and the
        # backend counts them all as done before the loop has taken the first; proposals would then depend on timing.
        while self.jobs and self.out < cap:
            job = self.jobs.popleft()
            self.backend.submit(job.jid, job.text, job.task)
            self.out += 1

    def _record(self, done: Finished) -> None:
        if done.cid not in self.ctl.inflight:
            return
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
               "trainings": float(self.scorer.trainings), "epochs": float(self.scorer.epochs), "in_flight": float(len(ctl.inflight))}
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
                  "lr": self.lr, "tuning": self.tuning}
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
                       stats, self.message, self.signum)


def _screening(cfg: SearchConfig) -> tuple[tuple[int, ...], float]:
    """The screen epochs that can stop a training (those before its last) and the margin."""
    f = cfg.fitness
    return tuple(e for e in f.screen_epochs if e < cfg.task.epochs), f.screen_margin


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _bar(cfg: SearchConfig, ctl: Controller, progress: bool) -> Any:
    if not progress:
        return None
    return tqdm(total=cfg.budget.max_evals, initial=len(ctl.population), unit="eval", dynamic_ncols=True,
                mininterval=0.5, desc=cfg.name, file=sys.stderr)
