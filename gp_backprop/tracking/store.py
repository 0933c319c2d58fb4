"""The MLflow store: its one default URI, a client for it, a local sqlite store's set-up, a server's reachability,
and the limits of what a run can hold."""
from __future__ import annotations

import logging
import os
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_URI", "PARAM_MAX", "TrackingError", "client", "check_server", "experiment", "fail_fast",
           "prepare_sqlite", "quiet"]

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"  # sqlite, not MLflow's file store (deprecated, refused without an env var)
PARAM_MAX = 6000                            # MLflow's limit on a param value


class TrackingError(RuntimeError):
    """The tracking store cannot be used at all; the message says why and how to fix it, in one line."""


def client(uri: str) -> Any:
    """An ``MlflowClient`` on ``uri`` (a local sqlite store is created and prepared first)."""
    from mlflow import MlflowClient  # MLflow takes seconds to import: only the commands that track pay for it

    quiet()
    prepare_sqlite(uri)
    return MlflowClient(tracking_uri=absolute(uri))


def experiment(mc: Any, name: str, uri: str, artifacts: str) -> str:
    """The id of experiment ``name``, created if missing: on a local sqlite store its artifacts go to
    ``<artifacts>/<name>`` beside the database (a server decides itself). Tagged so the UI opens it on its runs table,
    not on the GenAI overview."""
    exp = mc.get_experiment_by_name(name)
    if exp is not None:
        exp_id = exp.experiment_id
    else:
        where = (Path(artifacts) / name).resolve().as_uri() if uri.startswith("sqlite:") else None
        exp_id = mc.create_experiment(name, where)
    mc.set_experiment_tag(exp_id, "mlflow.experimentKind", "custom_model_development")
    return exp_id


def absolute(uri: str) -> str:
    """``uri`` with a relative sqlite path made absolute. MLflow keeps one store per URI string for the life of the
    process, so ``sqlite:///mlruns/mlflow.db`` would otherwise stay the first working directory's database."""
    if not uri.startswith("sqlite:///") or uri.startswith("sqlite:////"):
        return uri
    return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())


def quiet() -> None:
    """Keep MLflow to our one-line messages: no database error tracebacks (a locked sqlite store logs one per
    failed write; we retry and warn once), no "View run ..." lines per run on an HTTP store, no migration logs.
    Settings a user exported win."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name, level in (("mlflow", logging.CRITICAL), ("alembic", logging.ERROR), ("sqlalchemy", logging.ERROR)):
        logging.getLogger(name).setLevel(level)


def fail_fast() -> None:
    """HTTP calls to a tracking server that fail in seconds instead of MLflow's minutes of retries (the writer
    retries with its own backoff and keeps the search going). Settings a user exported win."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def check_server(uri: str) -> None:
    """Fail in seconds, not after MLflow's minutes of retries, when a tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10).close()
    except urllib.error.HTTPError:
        pass  # it answered
    except OSError as exc:
        raise TrackingError(f"cannot reach the MLflow server at {uri} ({getattr(exc, 'reason', exc)}); start it "
                            "with `mlflow server --host 127.0.0.1 --port 5000`, or pass --no-tracking") from None


def prepare_sqlite(uri: str) -> None:
    """Create a local sqlite store's folder and put the database in WAL mode (persistent in the file): one sync
    per commit instead of three, and ``mlflow ui`` can read while the search writes."""
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri[len("sqlite:///"):])
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()
