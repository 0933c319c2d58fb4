"""The Dask backend's chunks (issue 5): short candidates share a Dask task, yet each result comes back on its own, a
timeout or a killed worker inside a chunk costs only its own candidate, and no candidate is lost or counted twice.
Everything goes through the ``Backend`` interface (submit, wait, running, chunk); Dask's own task stream counts tasks."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import get_task_stream

from evaluators.task import TaskSpec
from gp_backprop.parallel import Done
from gp_backprop.parallel.dask import CHUNK_SECONDS, MAX_CHUNK, DaskBackend
from gp_backprop.parallel.worker import EVENTS_TOPIC
from tests.gp_backprop.conftest import ROOT

FAULTY = "tests.gp_backprop.faults:faulty"
PLAN = '{"sleep-0": "sleep", "kill-0": "kill", "float32-0": "float32", "gate-0": "gate"}'


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a test opens a "gate" candidate's gate (tests/gp_backprop/faults.py)."""
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def scheduler(gates: Path) -> Iterator[str]:
    """Two nanny-managed workers that know the fault plan (workers inherit it, also when restarted). No retries
    of a chunk whose worker died, so that a killed worker gives KilledWorker at once."""
    import dask
    from distributed import LocalCluster
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GP_FAULTS", PLAN)
        mp.setenv("GP_GATE_DIR", str(gates))
        mp.setenv("PYTHONPATH", str(ROOT))
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            yield cluster.scheduler_address


@pytest.fixture
def backend(scheduler: str) -> Iterator[DaskBackend]:
    b = DaskBackend(FAULTY, TaskSpec(), workers=2, timeout=2.0, scheduler=scheduler)
    b.start()
    yield b
    b.close()


def drain(b: DaskBackend) -> list[Done]:
    """Every result until nothing is in flight."""
    out, stuck = [], time.monotonic() + 300               # a guard against a hang, not a measurement
    while b.running():
        assert time.monotonic() < stuck, f"{b.running()} still in flight"
        out += b.wait(0.25)
    return out


def settle(b: DaskBackend) -> None:
    """Wait until every Dask task has ended: results come back as events, ahead of the end of their task, and the
    task stream only counts tasks that ended."""
    stuck = time.monotonic() + 300
    while any(b.client.processing().values()):
        assert time.monotonic() < stuck, b.client.processing()
        time.sleep(0.1)


def statuses(done: list[Done]) -> dict[int, str]:
    cids = [d.cid for d in done]
    assert len(cids) == len(set(cids)), f"a candidate came back twice: {cids}"
    return {d.cid: d.result.status for d in done}


def test_short_candidates_share_a_task_and_their_results_come_back_one_by_one(backend: DaskBackend,
                                                                             gates: Path) -> None:
    backend.mean_busy = 0.1              # as if the search had seen 0.1 s candidates
    size = int(CHUNK_SECONDS / 0.1)
    assert backend.chunk == size == 5 and backend.depth == 2 * size
    texts = ["ok-0", "gate-0", "ok-2", "ok-3", "ok-4", *(f"ok-{i}" for i in range(5, 10))]
    with get_task_stream(client=backend.client) as stream:
        for i, text in enumerate(texts):
            backend.submit(i, text)
        # Chunks are packed in submission order: 0-4 share a task, which cannot end while gate-0 waits. Yet the
        # result of 0, which trained before it, comes back.
        early: list[Done] = []
        stuck = time.monotonic() + 300
        while 0 not in statuses(early):
            assert time.monotonic() < stuck, "no result came back before its chunk ended"
            early += backend.wait(0.25)
        assert 1 not in statuses(early) and backend.running() == 10 - len(early)
        (gates / "gate-0").touch()
        done = early + drain(backend)
        settle(backend)
    assert statuses(done) == {i: "ok" for i in range(10)}
    assert len(stream.data) == 2                             # 10 candidates, 2 tasks


def test_chunks_grow_from_one_candidate_as_results_show_candidates_are_short(backend: DaskBackend) -> None:
    assert backend.chunk == 1                                # nothing known yet: one candidate per task
    cid, done = 0, []
    with get_task_stream(client=backend.client) as stream:
        while cid < 60 or backend.running():                 # as the search does: keep 2 chunks per worker busy
            while cid < 60 and backend.running() < backend.capacity() * backend.depth:
                backend.submit(cid, f"ok-{cid}")
                cid += 1
            done += backend.wait(0.25)
        settle(backend)
    assert statuses(done) == {i: "ok" for i in range(60)}
    assert backend.chunk == MAX_CHUNK                        # a fake result takes far less than CHUNK_SECONDS / 8
    assert len(stream.data) < 60                             # so candidates shared tasks


def test_a_timeout_inside_a_chunk_costs_only_that_candidate(backend: DaskBackend) -> None:
    backend.mean_busy = 0.05
    for i, text in enumerate(["ok-0", "ok-1", "sleep-0", "ok-3", "ok-4"]):
        backend.submit(i, text)
    done = drain(backend)
    # 3 and 4 waited behind the sleeper on the worker that was restarted: they went again, and trained.
    assert statuses(done) == {0: "ok", 1: "ok", 2: "timeout", 3: "ok", 4: "ok"}
    sleeper = next(d for d in done if d.cid == 2)
    assert sleeper.busy >= 2.0 and "timeout" in sleeper.result.message    # never stopped before its time


def test_a_killed_worker_inside_a_chunk_crashes_only_its_candidate(backend: DaskBackend) -> None:
    backend.mean_busy = 0.05
    for i, text in enumerate(["ok-0", "kill-0", "ok-2", "ok-3"]):
        backend.submit(i, text)
    done = drain(backend)
    assert statuses(done) == {0: "ok", 1: "crashed", 2: "ok", 3: "ok"}
    assert "KilledWorker" in next(d for d in done if d.cid == 1).result.message


def test_a_result_an_event_cannot_carry_comes_back_with_its_chunk(backend: DaskBackend) -> None:
    """A custom function may return numpy float32s: msgpack (Dask events) refuses them, pickle (results) does not."""
    backend.mean_busy = 0.05
    for i, text in enumerate(["ok-0", "float32-0", "ok-2"]):
        backend.submit(i, text)
    done = drain(backend)
    assert statuses(done) == {0: "ok", 1: "ok", 2: "ok"}
    assert next(d for d in done if d.cid == 1).result.val_acc == 0.5


def test_results_still_come_back_when_no_event_arrives(backend: DaskBackend) -> None:
    """Events are the fast path; each chunk's own return value is the backstop."""
    backend.client.unsubscribe_topic(EVENTS_TOPIC)
    backend.mean_busy = 0.05
    for i in range(6):
        backend.submit(i, f"ok-{i}")
    assert statuses(drain(backend)) == {i: "ok" for i in range(6)}


def test_a_fault_in_a_batched_group_costs_the_members_training_with_it(scheduler: str) -> None:
    # faults.grouped_many trains a chunk's members as one group, as evaluate_many does: a killed worker takes the
    # members still training with the culprit, a timeout stops the group's members together (each gets the timeout
    # times the group's size from the group's start); finished members keep their results
    b = DaskBackend("tests.gp_backprop.faults:grouped", TaskSpec(), workers=2, timeout=2.0, scheduler=scheduler,
                    members=4)
    b.start()
    try:
        for i, text in enumerate(["ok-0", "kill-0", "ok-2", "ok-3"]):
            b.submit(i, text)
        assert statuses(drain(b)) == {0: "ok", 1: "crashed", 2: "crashed", 3: "crashed"}
        for i, text in enumerate(["ok-4", "sleep-0", "ok-6", "ok-7"], start=4):
            b.submit(i, text)
        done = drain(b)
        assert statuses(done) == {4: "ok", 5: "timeout", 6: "timeout", 7: "timeout"}
        assert all(d.busy >= 4 * 2.0 for d in done if d.cid != 4)   # a group of 4 members: 4 x the timeout
    finally:
        b.close()
