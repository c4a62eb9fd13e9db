"""Queued jobs whose prompts ComfyUI's queue dropped (core's Clear queue, delete) end ``canceled``
and stop counting against ``max_queued`` (``server/reconcile.py``, the removal observer of
``comfy_host``); tier 1, with the fake host and a stand-in of ComfyUI's PromptQueue."""

from __future__ import annotations

import asyncio
import heapq

import pytest

from fake_host import Clock, compose_app
from myspinbot.server.events import STATUS
from myspinbot.server.reconcile import NOT_HELD_MESSAGE, REMOVED_MESSAGE, QueueReconciler
from myspinbot.server.settings import Settings
from test_job_comfy_host import StandInQueue, comfy_host_module, make_host  # noqa: F401
from test_recovery import form


@pytest.fixture
def api(host):
    """The composed job API (its reconciler observes removals as in production) with room for 3 queued jobs."""
    return compose_app(host, Settings(max_queued=3), clock=Clock())


@pytest.fixture
def statuses(service):
    """Every status event the service published, as ``(job id, status, message)``."""
    seen: list[tuple[str, str, str]] = []
    service.events.listen(lambda e: seen.append((e.job.id, e.job.status, e.job.message)) if e.kind == STATUS else None)
    return seen


async def submit(client, fixtures_dir, seed: int):
    return await client.post("/myspinbot/jobs", data=form(fixtures_dir, seed))


async def fill(client, host, fixtures_dir) -> tuple[str, list[str]]:
    """One job running and three queued (the limit): the next submission is refused with 429."""
    running = (await (await submit(client, fixtures_dir, 0)).json())["id"]
    host.emit("execution_start", prompt_id=running)
    queued = [(await (await submit(client, fixtures_dir, seed)).json())["id"] for seed in (1, 2, 3)]
    assert host.pending == queued
    refused = await submit(client, fixtures_dir, 4)
    assert refused.status == 429 and (await refused.json())["error"]["code"] == "queue_full"
    return running, queued


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


# --- removals reported by the host ---------------------------------------------------------

async def test_clear_queue_cancels_the_queued_jobs_and_frees_the_queue(client, host, service, statuses, fixtures_dir):
    QueueReconciler(service).observe()
    running, queued = await fill(client, host, fixtures_dir)

    assert host.clear() == queued  # core's Clear queue
    await settle()
    for job_id in queued:
        job = service.get(job_id)
        assert job.status == "canceled" and job.completed_at and job.started_at is None, job
        assert job.message == REMOVED_MESSAGE and job.error is None and not service.tracking.tracks(job_id)
    assert [(i, s) for i, s, _ in statuses if s == "canceled"] == [(i, "canceled") for i in queued]
    assert service.get(running).status == "running"  # the running prompt is not the queue's to clear

    again = [await submit(client, fixtures_dir, seed) for seed in (5, 6, 7)]  # no longer counted
    assert [r.status for r in again] == [202, 202, 202]
    assert (await submit(client, fixtures_dir, 8)).status == 429


async def test_delete_cancels_that_job_only(client, host, service, fixtures_dir):
    QueueReconciler(service).observe()
    _, queued = await fill(client, host, fixtures_dir)
    host.delete(queued[1])  # core's POST /queue {"delete": [id]}
    await settle()
    assert [service.get(i).status for i in queued] == ["queued", "canceled", "queued"]
    assert (await submit(client, fixtures_dir, 5)).status == 202
    r = await client.get(f"/myspinbot/jobs/{queued[2]}")
    assert (await r.json())["queue_position"] == 2


async def test_a_cancel_through_the_api_is_reported_but_finishes_once(client, host, service, statuses, fixtures_dir):
    QueueReconciler(service).observe()
    _, queued = await fill(client, host, fixtures_dir)
    body = await (await client.post(f"/myspinbot/jobs/{queued[0]}/cancel")).json()
    await settle()  # the host reports the dequeue too: the job is already canceled, nothing more
    assert body["status"] == "canceled" and service.get(queued[0]).message == "canceled"
    assert [s for i, s, _ in statuses if i == queued[0]] == ["canceled"]


async def test_removals_of_foreign_or_finished_prompts_change_nothing(client, host, service, fixtures_dir):
    reconciler = QueueReconciler(service)
    running, queued = await fill(client, host, fixtures_dir)
    assert reconciler.on_removed(["not-a-job", running]) == []
    assert service.get(running).status == "running"
    assert reconciler.on_removed(queued[:1]) == queued[:1] and reconciler.on_removed(queued[:1]) == []


# --- the periodic reconciliation -------------------------------------------------------------

async def test_a_queued_job_comfyui_no_longer_holds_is_canceled_on_the_second_check(client, host, service, fixtures_dir):
    reconciler = QueueReconciler(service, interval_s=60, grace_s=0)
    running, queued = await fill(client, host, fixtures_dir)
    host.pending.remove(queued[0])  # dropped without a word (an observer missed it, another process)
    assert reconciler.check() == []  # one check never cancels
    assert service.get(queued[0]).status == "queued"
    assert reconciler.check() == [queued[0]]
    lost = service.get(queued[0])
    assert lost.status == "canceled" and lost.message == NOT_HELD_MESSAGE
    assert [service.get(i).status for i in queued[1:]] == ["queued", "queued"]
    assert service.get(running).status == "running" and reconciler.check() == []


async def test_a_job_back_in_the_queue_or_in_the_history_is_kept(client, host, service, fixtures_dir):
    reconciler = QueueReconciler(service, interval_s=60, grace_s=0)
    _, queued = await fill(client, host, fixtures_dir)
    host.pending.remove(queued[0])
    assert reconciler.check() == []
    host.pending.append(queued[0])  # held again: starts over
    assert reconciler.check() == []
    host.pending.remove(queued[0])
    assert reconciler.check() == []
    # It ran and finished a moment ago; its events have not reached the service yet.
    host.histories[queued[0]] = {"outputs": {}, "status": {"status_str": "success", "completed": True}}
    assert reconciler.check() == [] and reconciler.check() == []
    assert service.get(queued[0]).status == "queued"


async def test_the_grace_period_covers_a_job_saved_but_not_yet_in_the_queue(client, host, service, fixtures_dir):
    reconciler = QueueReconciler(service, interval_s=60)  # grace: one interval
    host.enqueue_delay = 0.2  # ComfyUI still validating the prompt
    pending = asyncio.create_task(submit(client, fixtures_dir, 0))
    for _ in range(100):
        if service.store.count_status("queued"):
            break
        await asyncio.sleep(0.005)
    assert service.store.count_status("queued") == 1 and host.pending == []
    assert reconciler.check() == [] and reconciler.check() == []  # found missing twice, but within the grace
    assert (await pending).status == 202 and reconciler.check() == []
    assert [j.status for j in service.store.with_status("queued")] == ["queued"]


async def test_install_observes_removals_and_runs_the_check_periodically(aiohttp_client, host, api, fixtures_dir):
    service, reconciler = api.service, api.reconciler  # what compose installed (recovery.install)
    reconciler.interval_s, reconciler.grace_s = 0.02, 0.0
    client = await aiohttp_client(api.app)  # on_startup: resume, then the periodic check starts
    assert reconciler._periodic.running
    _, queued = await fill(client, host, fixtures_dir)
    host.delete(queued[0])
    host.pending.remove(queued[1])
    for _ in range(100):
        if service.get(queued[1]).status == "canceled":
            break
        await asyncio.sleep(0.01)
    assert service.get(queued[0]).message == REMOVED_MESSAGE
    assert service.get(queued[1]).message == NOT_HELD_MESSAGE
    assert service.get(queued[2]).status == "queued"
    await client.close()
    assert not reconciler._periodic.running


async def test_a_failing_check_does_not_stop_the_loop(host, service, monkeypatch):
    reconciler = QueueReconciler(service, interval_s=0.01)
    calls = []
    monkeypatch.setattr(host, "active_prompts", lambda: calls.append(1) or (_ for _ in ()).throw(RuntimeError("boom")))
    reconciler.start()
    await asyncio.sleep(0.1)
    await reconciler.stop()
    assert len(calls) >= 2


# --- comfy_host: observing core's wipe_queue / delete_queue_item ------------------------------

class CoreLikeQueue(StandInQueue):
    """The stand-in with core's removal methods as ComfyUI 0.33 writes them: deleting the last
    pending item goes through ``self.wipe_queue()``."""

    def wipe_queue(self):
        with self.mutex:
            self.queue = []
            return None

    def delete_queue_item(self, function):
        with self.mutex:
            for x in range(len(self.queue)):
                if function(self.queue[x]):
                    if len(self.queue) == 1:
                        self.wipe_queue()
                    else:
                        self.queue.pop(x)
                        heapq.heapify(self.queue)
                    return True
        return False


def core_like_host(module, loop):
    host, server, _ = make_host(module, [], True, loop=loop)
    server.prompt_queue = CoreLikeQueue(True, [])
    host._observe_removals()  # again, on the core-like queue
    return host, server.prompt_queue


async def test_the_host_reports_what_core_removed_from_its_queue(comfy_host_module):
    module, _ = comfy_host_module
    host, queue = core_like_host(module, asyncio.get_running_loop())
    reports: list[list[str]] = []
    host.subscribe_removed(reports.append)
    for number, prompt_id in enumerate(["run", "a", "b", "c", "d"]):
        queue.put(number, prompt_id)
    queue.start_next()  # "run" runs
    assert host.active_prompts() == {"run", "a", "b", "c", "d"}

    assert queue.delete_queue_item(lambda item: item[1] == "b") is True  # the original's result
    assert queue.delete_queue_item(lambda item: item[1] == "zzz") is False
    await settle()
    assert reports == [["b"]]
    assert queue.wipe_queue() is None
    await settle()
    assert reports == [["b"], ["a", "c", "d"]] and host.active_prompts() == {"run"}  # queue order; not "run"

    queue.put(9, "last")  # the last pending item: core's delete goes through wipe_queue; reported once
    assert host.cancel("last") == "dequeued"
    await settle()
    assert reports[2:] == [["last"]]


async def test_a_failing_observer_never_breaks_the_queue(comfy_host_module, caplog):
    module, _ = comfy_host_module
    host, queue = core_like_host(module, asyncio.get_running_loop())
    host.subscribe_removed(lambda ids: 1 / 0)
    queue.put(0, "a")
    queue.put(1, "b")
    assert queue.delete_queue_item(lambda item: item[1] == "a") is True
    await settle()
    assert [item[1] for item in queue.queue] == ["b"] and "queue removal observer failed" in caplog.text
    queue.queue.append(42)  # content it cannot read: the removal still happens, unreported
    assert queue.wipe_queue() is None and queue.queue == []
