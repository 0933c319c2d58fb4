"""A campaign's folder (``mlruns/campaigns/<name>/``): its state (the plan it started with, its MLflow run, its
sessions and the commit each ran on), one file per finished stage, and the results of each re-test stage. Files are
written to a temporary name and renamed, so a kill leaves the old file or the new one, never half of one."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.config import ConfigError
from gp_backprop.funnel import Cell, Finalist, Setup
from gp_backprop.search import SearchLock

__all__ = ["CampaignFolder", "code_version"]

VERSION = 1


def code_version() -> tuple[str, bool]:
    """The commit this code runs from and whether its work tree has changes (``("unknown", False)`` outside git)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return sha, bool(dirty)


class CampaignFolder:
    """``state.json``, ``<stage>.done.json`` per finished stage, ``<stage>.cells.json`` per re-test stage's results,
    and ``<stage>/`` for its files (table, CSV, tuning, curves)."""

    def __init__(self, path: str | Path, name: str) -> None:
        self.path, self.name = Path(path), name
        self.lock = SearchLock(self.path, name, kind="campaign")

    # ---- the state ----------------------------------------------------------------------------------------------
    def start(self, plan: dict[str, str], resume: bool, overwrite: bool, source: str,
              redo: Sequence[str] = ()) -> dict[str, Any]:
        """The state of this session: a new one, or the stopped or finished campaign's, checked to keep its plan,
        with the re-test stages in ``redo`` forgotten (trained again). Records the session (when, on which
        commit)."""
        if overwrite and self.path.exists():
            for child in self.path.iterdir():
                if child.name != self.lock.path.name:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        state = self._read("state.json")
        if state is None:
            if resume or redo:
                flag = "--resume" if resume else "--redo"
                raise ConfigError(f"{flag}: campaign {self.name!r} has not started (no {self.path}/state.json); "
                                  f"run it without {flag}")
            state = {"version": VERSION, "name": self.name, "plan": plan, "status": "running", "run_id": "",
                     "sessions": []}
        else:
            _same_plan(state.get("plan", {}), plan, source, self.name)
            if state.get("status") != "finished" and not (resume or redo):
                raise ConfigError(f"campaign {self.name!r} stopped before its end; add --resume to continue it, or "
                                  "--overwrite to start it again")
        for stage in redo:   # e.g. after a fix to the stage's code: its results go, the searches stay
            self.forget(stage)
            state["status"] = "running"
        if state["status"] != "finished":   # a finished campaign run again only writes its report again
            sha, dirty = code_version()
            state["sessions"].append({"started": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": sha, "dirty": dirty})
        self.save(state)
        return state

    def save(self, state: dict[str, Any]) -> None:
        self._write("state.json", state)

    # ---- stages -------------------------------------------------------------------------------------------------
    def done(self, stage: str) -> dict[str, Any] | None:
        """What a finished stage recorded, or None if it has not finished."""
        return self._read(f"{stage}.done.json")

    def finish(self, stage: str, record: dict[str, Any]) -> None:
        self._write(f"{stage}.done.json", record)

    def stage_dir(self, stage: str) -> Path:
        return self.path / stage

    def forget(self, stage: str) -> None:
        """Drop a re-test stage's results and files, so that the campaign trains it again."""
        for name in (f"{stage}.done.json", f"{stage}.cells.json"):
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.stage_dir(stage), ignore_errors=True)

    def save_cells(self, stage: str, cells: list[Cell], seconds: float) -> None:
        """A re-test stage's results, before they are logged: a kill after this loses no training."""
        self._write(f"{stage}.cells.json", {"seconds": seconds, "cells": [_cell_dict(c) for c in cells]})

    def cells(self, stage: str) -> tuple[list[Cell], float] | None:
        data = self._read(f"{stage}.cells.json")
        if data is None:
            return None
        return [_cell(c) for c in data["cells"]], data["seconds"]

    # ---- files --------------------------------------------------------------------------------------------------
    def _read(self, name: str) -> dict[str, Any] | None:
        path = self.path / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} cannot be read ({exc}); restore it, or start the campaign again with "
                              "--overwrite") from None

    def _write(self, name: str, data: dict[str, Any]) -> None:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)


def _same_plan(old: dict[str, str], new: dict[str, str], source: str, name: str) -> None:
    """A campaign's plan is fixed before its searches run (what counts as a result is not chosen after seeing
    them): any change is refused, naming the first changed setting."""
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise ConfigError(f"{source}: {key} is {new.get(key)!r} now but was {old.get(key)!r} when campaign "
                              f"{name!r} started; a campaign keeps the plan it started with: restore it, or start "
                              "a new campaign (another name, or --overwrite)")


def _cell_dict(c: Cell) -> dict[str, Any]:
    s = c.setup
    return {"finalist": asdict(c.finalist), "results": [r.to_dict() for r in c.results],
            "setup": {"name": s.name, "optimizer": s.optimizer, "description": s.description,
                      "task": s.task.to_dict()}}


def _cell(d: dict[str, Any]) -> Cell:
    s = d["setup"]
    setup = Setup(s["name"], s["optimizer"], s["description"], TaskSpec.from_dict(s["task"]))
    return Cell(Finalist(**d["finalist"]), setup, [EvalResult.from_dict(r) for r in d["results"]])
