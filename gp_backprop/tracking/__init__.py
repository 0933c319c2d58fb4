"""MLflow tracking: the store (client, sqlite set-up, server check, limits, the default URI), the search's
background writer, the reader that brings a search back, and plain tables as runs."""
from __future__ import annotations

from gp_backprop.tracking.reader import RecordError, candidates, children, find_search, search_rows
from gp_backprop.tracking.store import DEFAULT_URI, PARAM_MAX, TrackingError, check_server, client, prepare_sqlite
from gp_backprop.tracking.table import log_table
from gp_backprop.tracking.writer import Tracker, Trained

__all__ = ["DEFAULT_URI", "PARAM_MAX", "RecordError", "Tracker", "Trained", "TrackingError", "candidates",
           "check_server", "children", "client", "find_search", "log_table", "prepare_sqlite", "search_rows"]
