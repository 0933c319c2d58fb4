"""The Dask backend's chunks (issue 5): short candidates share a Dask task, yet each result comes back on its own, a
timeout or a killed worker inside a chunk costs only its own candidate, and no candidate is lost or counted twice."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from evaluators.task import TaskSpec
from gp_backprop.parallel.dask import DaskBackend
from gp_backprop.parallel import Done
from gp_backprop.parallel.worker import EVENTS_TOPIC
from tests.gp_backprop.conftest import ROOT

FAULTY = "tests.gp_backprop.faults:faulty"
PLAN = ('{"sleep-0": "sleep", "kill-0": "kill", "float32-0": "float32", '
        '"nap-0": "nap", "nap-1": "nap", "nap-2": "nap", "nap-3": "nap"}')


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """Two nanny-managed workers that know the fault plan (workers inherit it, also when restarted). No retries
    of a chunk whose worker died, so that a killed worker gives KilledWorker at once."""
    import dask
    from distributed import LocalCluster
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GP_FAULTS", PLAN)
        mp.setenv("GP_NAP", "0.4")
        mp.setenv("PYTHONPATH", str(ROOT))
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            yield cluster.scheduler_address


@pytest.fixture
def backend(scheduler: str) -> Iterator[DaskBackend]:
    b = DaskBackend(FAULTY, TaskSpec(), workers=2, timeout=2.0, scheduler=scheduler)
    b.start()
    sent: list[list[int]] = []
    send = b._send
    b._send = lambda cids: (sent.append(list(cids)), send(cids))[1]  # type: ignore[method-assign]
    b.sent = sent  # type: ignore[attr-defined]
    yield b
    b.close()


def drain(b: DaskBackend, limit: float = 60.0) -> list[tuple[float, Done]]:
    """Every result, with when it arrived, until nothing is in flight."""
    out, t0 = [], time.monotonic()
    while b.running():
        assert time.monotonic() - t0 < limit, f"still in flight: {sorted(b.cands)}"
        out += [(time.monotonic() - t0, d) for d in b.wait(0.25)]
    return out


def statuses(done: list[tuple[float, Done]]) -> dict[int, str]:
    cids = [d.cid for _, d in done]
    assert len(cids) == len(set(cids)), f"a candidate came back twice: {cids}"
    return {d.cid: d.result.status for _, d in done}


def test_short_candidates_share_a_task_and_their_results_come_back_one_by_one(backend: DaskBackend) -> None:
    backend.mean_busy = 0.1              # as if the search had seen 0.1 s candidates: 5 per chunk
    assert backend.chunk == 5 and backend.depth == 10
    for i in range(4):
        backend.submit(i, f"nap-{i}")
    for i in range(4, 10):
        backend.submit(i, f"ok-{i}")
    done = drain(backend)
    assert statuses(done) == {i: "ok" for i in range(10)}
    assert backend.sent == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    # The first chunk trains its four 0.4 s naps on one worker, one after the other: the first result is back long
    # before the chunk ends.
    arrived = {d.cid: t for t, d in done}
    assert arrived[0] < 1.0 < 1.4 < arrived[3]


def test_chunks_grow_from_one_candidate_as_results_show_candidates_are_short(backend: DaskBackend) -> None:
    cid = 0
    done: list[tuple[float, Done]] = []
    while cid < 60 or backend.running():     # as the search does: keep 2 chunks per worker in flight
        while cid < 60 and backend.running() < backend.capacity() * backend.depth:
            backend.submit(cid, f"ok-{cid}")
            cid += 1
        done += [(0.0, d) for d in backend.wait(0.25)]
    assert statuses(done) == {i: "ok" for i in range(60)}
    assert sorted(c for chunk in backend.sent for c in chunk) == list(range(60))
    assert len(backend.sent[0]) == 1 and max(map(len, backend.sent)) == 8   # 1 until a result is known; then 8
    assert len(backend.sent) < 20


def test_a_timeout_inside_a_chunk_costs_only_that_candidate(backend: DaskBackend) -> None:
    backend.mean_busy = 0.05
    for i, text in enumerate(["ok-0", "ok-1", "sleep-0", "ok-3", "ok-4"]):
        backend.submit(i, text)
    done = drain(backend)
    assert statuses(done) == {0: "ok", 1: "ok", 2: "timeout", 3: "ok", 4: "ok"}
    sleeper = next(d for _, d in done if d.cid == 2)
    assert 2.0 <= sleeper.busy < 3.5 and "timeout" in sleeper.result.message
    assert backend.sent[0] == [0, 1, 2, 3, 4] and backend.sent[1] == [3, 4]   # the rest of its chunk went again


def test_a_killed_worker_inside_a_chunk_crashes_only_its_candidate(backend: DaskBackend) -> None:
    backend.mean_busy = 0.05
    for i, text in enumerate(["ok-0", "kill-0", "ok-2", "ok-3"]):
        backend.submit(i, text)
    done = drain(backend)
    assert statuses(done) == {0: "ok", 1: "crashed", 2: "ok", 3: "ok"}
    assert "KilledWorker" in next(d for _, d in done if d.cid == 1).result.message


def test_a_result_an_event_cannot_carry_comes_back_with_its_chunk(backend: DaskBackend) -> None:
    """A custom function may return numpy float32s: msgpack (Dask events) refuses them, pickle (results) does not."""
    backend.mean_busy = 0.05
    for i, text in enumerate(["ok-0", "float32-0", "ok-2"]):
        backend.submit(i, text)
    done = drain(backend)
    assert statuses(done) == {0: "ok", 1: "ok", 2: "ok"}
    assert next(d for _, d in done if d.cid == 1).result.val_acc == 0.5


def test_results_still_come_back_when_no_event_arrives(backend: DaskBackend) -> None:
    """Events are the fast path; each chunk's own return value is the backstop."""
    backend.client.unsubscribe_topic(EVENTS_TOPIC)
    backend.mean_busy = 0.05
    for i in range(6):
        backend.submit(i, f"ok-{i}")
    assert statuses(drain(backend)) == {i: "ok" for i in range(6)}
