"""Several servers on one PostgreSQL job queue (``repos/claims.py``, ``jobs/claiming.py``), against
a real PostgreSQL (``postgres_url``): two claimers never get the same job; a write for an attempt
whose claim is gone is rejected (the attempt is the fencing token); an expired lease is reclaimed
(queued again, then ``failed`` with ``lost_worker`` after the last attempt); a renewed one is
not; a job is claimed only by an idle server that has its pipeline; cancel from another server;
a held job whose outcome was never recorded, or whose prompt left ComfyUI's queue.

Leases are measured on the database's clock: these tests use leases of a fraction of a second
and wait them out. Composed servers, events, webhooks, retention and outages:
``test_job_shared_queue.py``.
"""

from __future__ import annotations

import threading
import time

import pytest

from myspinbot.server.jobs.lifecycle import LOST_WORKER, RECLAIMED_MESSAGE
from myspinbot.server.model import CANCELED, CANCELING, FAILED, QUEUED, RUNNING, SUCCEEDED
from myspinbot.server.store import LeaseLost
from shared_servers import PROMPT, Server, add_jobs


def test_two_claimers_never_get_the_same_job(servers):
    a, b = servers("a"), servers("b")
    ids = add_jobs(a.store, 60)
    got: list[tuple[str, str, int]] = []
    start = threading.Barrier(8)

    def claim_all(server: Server, worker: str) -> None:
        start.wait()
        while (claimed := server.store.claims.claim(worker, 30.0)) is not None:
            got.append((claimed[0].id, worker, claimed[1].attempt))

    threads = [threading.Thread(target=claim_all, args=(server, f"{server.name}{n}"))
               for server in (a, b) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(j for j, _, _ in got) == ids  # every job once, none twice
    assert {attempt for _, _, attempt in got} == {1}
    assert len({w for _, w, _ in got}) > 1  # they really competed
    assert a.store.claims.claim("late", 30.0) is None


def test_claims_take_the_oldest_job_of_the_servers_pipelines(servers):
    a = servers("a", pipelines=("animate",))
    add_jobs(a.store, 2, "lite")
    animate = add_jobs(a.store, 2, "animate", start=1_900_000_000.0)
    job, claim = a.queue.claim()
    assert (job.id, claim.attempt, claim.worker) == (animate[0], 1, "a")
    assert a.store.held() == [claim]


def test_a_write_for_an_attempt_whose_claim_is_gone_is_rejected(servers):
    a, b = servers("a", lease_s=0.4), servers("b")
    [job_id] = add_jobs(a.store, 1)
    job, old = a.queue.claim()
    a.service.lifecycle.start(job)  # fenced, within the lease: written
    assert b.store.get(job_id).status == RUNNING

    time.sleep(0.6)  # a stalls past its lease (a paused process)
    late = a.store.get(job_id)
    with pytest.raises(LeaseLost):
        a.service.lifecycle.succeed(late, [])
    assert b.store.get(job_id).status == RUNNING and a.store.held() == []

    assert b.queue.reclaim().requeued == [job_id]
    again, new = b.queue.claim()
    assert (again.id, new.attempt, new.worker) == (job_id, 2, "b")
    # The old attempt's token no longer matches, whatever the lease: its write changes nothing.
    stale = b.store.get(job_id)
    stale.status, stale.progress = SUCCEEDED, 1.0
    assert not a.store.claims.save_fenced(stale, old)
    assert a.store.claims.renew(old, 30.0) is None
    assert b.store.get(job_id).status == QUEUED and b.store.claims.current(job_id) == new
    # The current attempt writes.
    b.service.lifecycle.start(b.store.get(job_id))
    b.service.lifecycle.succeed(b.store.get(job_id), [])
    done = a.store.get(job_id)
    assert done.status == SUCCEEDED and b.store.claims.current(job_id) is None and b.store.held() == []


def test_an_expired_lease_is_reclaimed_until_the_last_attempt_then_the_job_fails_lost_worker(servers):
    a, b = servers("a", lease_s=0.3), servers("b", lease_s=0.3)
    [job_id] = add_jobs(a.store, 1)
    for attempt, (holder, reclaimer) in enumerate(((a, b), (b, a), (a, b)), start=1):
        job, claim = holder.queue.claim()
        assert (job.id, claim.attempt) == (job_id, attempt)
        holder.service.lifecycle.start(job)
        assert reclaimer.queue.reclaim().requeued == []  # the lease still holds
        time.sleep(0.5)  # the holder died
        outcome = reclaimer.queue.reclaim()
        if attempt < 3:
            assert outcome.requeued == [job_id]
            requeued = reclaimer.store.get(job_id)
            assert (requeued.status, requeued.message, requeued.started_at, requeued.progress) == (
                QUEUED, RECLAIMED_MESSAGE, None, 0.0)
        else:
            assert outcome.abandoned == [job_id]
    failed = a.store.get(job_id)
    assert failed.status == FAILED and failed.error["code"] == LOST_WORKER
    assert failed.error["details"] == {"attempts": 3}
    assert a.queue.claim() is None and b.queue.reclaim().abandoned == []


def test_a_renewed_lease_is_not_reclaimed(servers):
    a, b = servers("a", lease_s=0.5), servers("b")
    [job_id] = add_jobs(a.store, 1)
    job, claim = a.queue.claim()
    a.service.lifecycle.start(job)
    for _ in range(6):  # 1.2 s: more than twice the lease
        time.sleep(0.2)
        assert a.queue.heartbeat() == ([], [])
        assert b.queue.reclaim().requeued == []
    assert a.store.claims.current(job_id).lease_until > claim.lease_until
    a.service.lifecycle.succeed(a.store.get(job_id), [])  # still a's: written
    assert b.store.get(job_id).status == SUCCEEDED


async def test_an_idle_server_claims_and_queues_the_job_and_a_busy_one_does_not(servers):
    a, b = servers("a"), servers("b")
    first, second = add_jobs(a.store, 2)
    b.host.pending.append("someone-elses-prompt")  # b's ComfyUI is busy
    assert await b.queue.tick() is None
    queued = await a.queue.tick()
    assert queued.id == first and a.host.pending == [first] and a.host.prompts[first] == PROMPT
    assert await a.queue.tick() is None  # a holds a job: it claims no second one
    a.host.run_success(first, {})
    assert a.store.get(first).status == SUCCEEDED and a.store.held() == []
    assert (await a.queue.tick()).id == second


async def test_cancel_from_another_server_stops_the_prompt_where_it_runs(servers):
    a, b = servers("a"), servers("b")
    [job_id] = add_jobs(a.store, 1)
    await a.queue.tick()
    a.host.emit("execution_start", prompt_id=job_id)
    assert a.store.get(job_id).status == RUNNING

    assert b.service.cancel(job_id).status == CANCELING  # b does not run it: it asks
    # a's next progress write cannot undo the cancel request
    a.host.emit("executing", node="1", prompt_id=job_id)
    assert a.store.get(job_id).status == CANCELING
    await a.queue.tick()  # heartbeat: a sees it and interrupts its prompt (that one only)
    assert a.host.interrupts == [job_id]
    a.host.emit("execution_interrupted", prompt_id=job_id)
    assert b.store.get(job_id).status == CANCELED and a.store.held() == []


async def test_cancel_of_a_claimed_job_still_pending_on_its_server_ends_it_at_the_next_heartbeat(servers):
    a, b = servers("a"), servers("b")
    [job_id] = add_jobs(a.store, 1)
    await a.queue.tick()
    assert b.service.cancel(job_id).status == CANCELING
    await a.queue.tick()
    assert a.host.pending == [] and a.store.get(job_id).status == CANCELED and a.store.held() == []


async def test_a_held_job_whose_run_ended_unrecorded_is_given_up_and_runs_again(servers):
    a = servers("a")
    [job_id] = add_jobs(a.store, 1)
    await a.queue.tick()
    # ComfyUI finished the prompt while the database was down: the tracker could not record it
    a.service.tracking.forget(job_id)
    a.host.pending.clear()
    await a.queue.tick()  # given up, reclaimed (queued again) and, this server being idle, claimed again
    assert a.store.claims.current(job_id).attempt == 2 and a.host.pending == [job_id]
    assert a.store.get(job_id).message == RECLAIMED_MESSAGE


async def test_clearing_comfyuis_queue_cancels_the_held_job_only(servers):
    import asyncio

    from myspinbot.server.reconcile import REMOVED_MESSAGE

    a, b = servers("a"), servers("b")
    mine, theirs = add_jobs(a.store, 2)
    a.queue.observe()
    await a.queue.tick()
    assert a.host.pending == [mine]
    a.host.clear()  # core's Clear queue on a's ComfyUI
    await asyncio.sleep(0.05)
    job = b.store.get(mine)
    assert (job.status, job.message) == (CANCELED, REMOVED_MESSAGE) and a.store.held() == []
    assert b.store.get(theirs).status == QUEUED  # waiting in the database, untouched
