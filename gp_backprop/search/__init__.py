"""The search (Backprop Evolution §3.2): the steady-state loop, the ask/tell controller, journaled checkpoints, the
hall of fame, parent selection schemes and the end-of-search summary."""
from __future__ import annotations

from gp_backprop.search.checkpoint import CheckpointError, RunFolder, WriteError
from gp_backprop.search.controller import Candidate, Controller, Entry
from gp_backprop.search.hall_of_fame import hall_of_fame
from gp_backprop.search.lock import SearchBusy, SearchLock
from gp_backprop.search.loop import Outcome, run_search
from gp_backprop.search.resume import prepare
from gp_backprop.search.selection import SELECTIONS
from gp_backprop.search.summary import print_summary

__all__ = ["Candidate", "CheckpointError", "Controller", "Entry", "Outcome", "RunFolder", "SELECTIONS", "SearchBusy",
           "SearchLock", "WriteError", "hall_of_fame", "prepare", "print_summary", "run_search"]
