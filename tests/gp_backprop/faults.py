"""Evaluation functions for the search tests, named by ``evaluation.function`` and imported in the workers.

``faulty`` fails on purpose for the equation texts listed in the GP_FAULTS environment variable (JSON text -> fault),
which worker processes inherit; every other text gets a fast, deterministic fake result (each text given is appended
to the file GP_COUNT_LOG, if set). ``counting`` trains for real
and appends each text it is given to the file GP_COUNT_LOG, so a test can see what was trained how often (and can
hold the search after a given number of trainings). ``holding`` is ``evaluators.evaluate`` (its chunks batched by
``evaluate_many``) that can stop for good at a chosen moment (GP_HOLD), for a test to kill the search there.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import signal
import time
from pathlib import Path

from evaluators import evaluate, evaluate_many
from evaluators.task import EvalResult, TaskSpec

FAULTS = ("raise", "nan", "kill", "sleep")


@functools.cache
def _faults() -> dict[str, str]:
    return json.loads(os.environ.get("GP_FAULTS", "{}"))


def fake_accuracy(text: str) -> float:
    return 0.25 + 0.5 * int(hashlib.sha256(text.encode()).hexdigest()[:6], 16) / 0xFFFFFF


def faulty(text: str, task: TaskSpec) -> EvalResult:
    if os.environ.get("GP_COUNT_LOG"):           # what was trained, one line each
        with open(os.environ["GP_COUNT_LOG"], "a", encoding="utf-8") as f:
            f.write(text + "\n")
    fault = _faults().get(text, "ok")
    if fault == "raise":
        raise RuntimeError("injected failure")
    if fault == "nan":
        return EvalResult("ok", val_acc=float("nan"), test_acc=float("nan"), val_curve=(float("nan"),))
    if fault == "kill":
        time.sleep(0.2)                          # mid-evaluation
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "sleep":
        time.sleep(600)
    if fault == "nap":                           # slow, but within the timeout
        time.sleep(float(os.environ.get("GP_NAP", "1.0")))
    if fault == "gate":                          # waits until the test creates the file GP_GATE_DIR/<text>
        gate = Path(os.environ["GP_GATE_DIR"]) / text
        for _ in range(6000):                    # at most 10 minutes, should a test fail before it opens
            if gate.exists():
                break
            time.sleep(0.1)
    if fault == "float32":                       # a custom function's numpy scalars: valid, but not msgpack-able
        import numpy as np
        return EvalResult("ok", val_acc=np.float32(0.5), val_curve=(np.float32(0.5),))
    acc = fake_accuracy(text)
    return EvalResult("ok", val_acc=acc, test_acc=acc - 0.01, val_curve=(acc / 2, acc), loss_curve=(1.0, 0.5),
                      steps=2, wall_time=0.001)


def counting(text: str, task: TaskSpec) -> EvalResult:
    """Log ``text``, then train it. With GP_COUNT_HOLD=N, the training after the first N never ends: a test waits
    for N results in the journal and then stops the search, with one candidate in training, at no race."""
    log = os.environ["GP_COUNT_LOG"]
    hold = int(os.environ.get("GP_COUNT_HOLD", "0"))
    before = open(log, encoding="utf-8").read().count("\n") if os.path.exists(log) else 0
    with open(log, "a", encoding="utf-8") as f:
        f.write(text + "\n")
    while hold and before >= hold:
        time.sleep(1.0)
    return evaluate(text, task)


def whose(text: str, task: TaskSpec) -> EvalResult:
    """Train for real, and say which worker process did: its pid is the result's message."""
    return dataclasses.replace(evaluate(text, task), message=str(os.getpid()))


def sleeping(text: str, task: TaskSpec) -> EvalResult:
    """No CPU, a fixed duration: what is left of worker utilization is the search's own overhead."""
    time.sleep(float(os.environ.get("GP_SLEEP", "0.1")))
    return EvalResult("ok", val_acc=fake_accuracy(text), val_curve=(0.5, 0.5), wall_time=0.1)


def grouped(text: str, task: TaskSpec) -> EvalResult:
    """``faulty``, for one member; ``grouped_many`` trains a chunk's members as one batched group would."""
    return faulty(text, task)


def grouped_many(members: list[tuple[str, TaskSpec]], on_result=None) -> list[EvalResult]:
    """The members in one group, each reported as it ends (``evaluate_many``'s protocol); a "kill" fault kills the
    process with the rest of the group still training."""
    out = []
    for i, (text, task) in enumerate(members):
        result = faulty(text, task)
        out.append(result)
        if on_result is not None:
            on_result(i, result)
    return out


def holding(text: str, task: TaskSpec) -> EvalResult:
    return evaluate(text, task)


_ENDED = [0]   # members this worker process has seen end


def holding_many(members: list[tuple[str, TaskSpec]], on_result=None) -> list[EvalResult]:
    """``evaluate_many``, which never returns from where GP_HOLD says, after touching the file GP_HOLD_MARK:
    "seed:N": before it trains a group holding a member of seed N (a promoted candidate's extra seed);
    "ended:N": once this worker has seen N members end, with the rest of that group in training."""
    hold, _, n = os.environ.get("GP_HOLD", "").partition(":")

    def stop() -> None:
        Path(os.environ["GP_HOLD_MARK"]).touch()
        while True:
            time.sleep(1.0)

    def ended(i: int, result: EvalResult) -> None:
        if on_result is not None:
            on_result(i, result)
        _ENDED[0] += 1
        if hold == "ended" and _ENDED[0] == int(n):
            stop()
    if hold == "seed" and any(task.seed == int(n) for _, task in members):
        stop()
    return evaluate_many(members, on_result=ended)
