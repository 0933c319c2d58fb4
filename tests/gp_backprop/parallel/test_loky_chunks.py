"""Loky workers take chunks of members (issue 13): results come back member by member, and a crash or a timeout
inside a chunk maps back to its members: finished ones keep their results, the ones training get the fault's status,
the ones not started are sent again. Real processes, real SIGKILL; everything through the ``Backend`` interface."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from evaluators.task import TaskSpec
from gp_backprop.parallel import Done, make_backend

PLAN = '{"kill-0": "kill", "sleep-0": "sleep", "nap-0": "nap", "nap-1": "nap", "nap-2": "nap"}'
TASK = TaskSpec(dataset="synthetic", epochs=1)


@pytest.fixture(autouse=True)
def plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GP_FAULTS", PLAN)   # loky's workers inherit the environment when they start
    monkeypatch.setenv("GP_NAP", "1.5")


def run(function: str, texts: list[str], members: int, timeout: float = 0.0) -> Iterator[list[Done]]:
    """Submit every text to one loky worker taking ``members`` at a time; yield each ``wait``'s results."""
    backend = make_backend("loky", function, TASK, workers=1, timeout=timeout, members=members)
    backend.start()
    try:
        for i, text in enumerate(texts):
            backend.submit(i, text)
        deadline = time.monotonic() + 120                       # a guard against a hang, not a measurement
        while backend.running() and time.monotonic() < deadline:
            yield backend.wait(0.5)
        assert not backend.running(), "members never came back"
    finally:
        backend.close()


def statuses(function: str, texts: list[str], members: int, timeout: float = 0.0) -> dict[int, str]:
    done = [d for batch in run(function, texts, members, timeout) for d in batch]
    assert sorted(d.cid for d in done) == list(range(len(texts)))   # each member exactly once
    return {d.cid: d.result.status for d in done}


def test_a_crash_inside_a_chunk_costs_only_the_member_training_then():
    got = statuses("tests.gp_backprop.faults:faulty", ["a", "b", "kill-0", "c", "d"], members=5)
    assert got == {0: "ok", 1: "ok", 2: "crashed", 3: "ok", 4: "ok"}   # c and d had not started: sent again


def test_a_timeout_inside_a_chunk_costs_only_the_member_training_then():
    got = statuses("tests.gp_backprop.faults:faulty", ["a", "sleep-0", "b"], members=3, timeout=1.0)
    assert got == {0: "ok", 1: "timeout", 2: "ok"}


def test_a_crash_in_a_batched_group_costs_the_members_training_with_it():
    # grouped_many trains the chunk as one group: a kill takes the members still training with the culprit
    got = statuses("tests.gp_backprop.faults:grouped", ["a", "kill-0", "b", "c"], members=4)
    assert got == {0: "ok", 1: "crashed", 2: "crashed", 3: "crashed"}


def test_results_come_back_as_members_finish_not_when_the_chunk_ends():
    batches = list(run("tests.gp_backprop.faults:faulty", ["a", "nap-0", "b"], members=3))
    first = next(i for i, batch in enumerate(batches) if batch)
    assert [d.cid for d in batches[first]] == [0]                # before the 1.5 s nap ends
    assert {d.cid for batch in batches[first + 1:] for d in batch} == {1, 2}


def test_a_timeout_is_per_member_of_the_running_group():
    # three naps of 1.5 s in one chunk, timeout 2 s: each member is within its own time though the chunk takes 4.5 s
    got = statuses("tests.gp_backprop.faults:faulty", ["nap-0", "nap-1", "nap-2"], members=3, timeout=2.0)
    assert got == {0: "ok", 1: "ok", 2: "ok"}
