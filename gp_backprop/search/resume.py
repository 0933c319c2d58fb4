"""Where a search continues from: its folder checked against the settings, and the controller rebuilt from the
checkpoint and the journal replayed after it, with the candidates that had finished out of turn (``held``).

Replay is exact because the loop tells the controller its results in proposal order and proposes at points fixed by
that order: the same events in the same order rebuild the same controller (STYLE §8).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evaluators.task import EvalResult

from gp_backprop.config import ConfigError, SearchConfig, search_identity
from gp_backprop.search.checkpoint import CheckpointError, RunFolder
from gp_backprop.search.controller import Controller, Score
from gp_backprop.search.scoring import Finished

__all__ = ["Saved", "Restored", "prepare", "restore", "held_json", "screening"]

Saved = tuple[dict[str, Any], list[dict[str, Any]]]  # a snapshot and the journal events after it


@dataclass
class Restored:
    """A search's state at the start of a session."""

    controller: Controller
    elapsed: float = 0.0
    logged: int = 0                     # child runs already in MLflow
    run_id: str = ""
    held: dict[int, Finished] = field(default_factory=dict)   # finished, their turn to be told not come yet
    lookahead: int = 0                  # candidates proposed ahead of the oldest not yet told (0: not decided yet)


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


def screening(cfg: SearchConfig) -> tuple[tuple[int, ...], float]:
    """The screen epochs that can stop a training (those before its last) and the margin."""
    f = cfg.fitness
    return tuple(e for e in f.screen_epochs if e < cfg.task.epochs), f.screen_margin


def held_json(done: Finished) -> dict[str, Any]:
    """What the loop keeps of a finished candidate until its turn: what ``Controller.tell`` takes."""
    return {"cid": done.cid, "result": done.result.to_dict(), "score": asdict(done.score), "busy": done.busy}


def _held(d: dict[str, Any]) -> Finished:
    return Finished(cid=d["cid"], result=EvalResult.from_dict(d["result"]), score=Score.from_dict(d["score"]),
                    busy=d["busy"])


def restore(cfg: SearchConfig, folder: RunFolder, saved: Saved | None, repair: bool) -> Restored:
    """The controller where the checkpoint and journal left it, with the time, tracking position and held results."""
    if saved is None:
        ctl = Controller(cfg.space, cfg.seed)
        ctl.screening = screening(cfg)
        return Restored(ctl)
    snap, events = saved
    try:
        ctl = Controller.from_state(cfg.space, cfg.seed, snap["controller"])
        ctl.screening = screening(cfg)   # before the replay: a replayed proposal gets the stops it had
        held = {f.cid: f for f in map(_held, snap.get("held", []))}
        lookahead = int(snap.get("lookahead", 0))
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
                held.pop(r["cand"]["cid"], None)
                elapsed = max(elapsed, r["t"])
            elif "h" in ev:
                done = _held(ev["h"])
                held[done.cid] = done
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
            return restore(cfg, folder, (snap, events[:i]), repair)
    track = snap.get("tracking", {})
    held = {cid: f for cid, f in held.items() if cid in ctl.inflight}
    return Restored(ctl, elapsed, track.get("logged", 0), track.get("run_id", ""), held, lookahead)
