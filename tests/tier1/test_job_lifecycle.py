"""``jobs/lifecycle.py``: the one owner of job status changes (tier 1).

Every change from every status: allowed exactly where ``TRANSITIONS`` says, and then saved and
published; refused with ``IllegalTransition`` everywhere else, leaving the job as it was.
"""

from __future__ import annotations

import dataclasses

import pytest

from fake_host import Clock
from myspinbot.server.events import STATUS, JobEvents
from myspinbot.server.jobs.lifecycle import LOST, NEW, TRANSITIONS, IllegalTransition, JobLifecycle
from myspinbot.server.model import QUEUED, STATUSES, Job, Output

CALLS = {
    "queue": lambda lc, job: lc.queue(job),
    "start": lambda lc, job: lc.start(job),
    "begin_cancel": lambda lc, job: lc.begin_cancel(job),
    "succeed": lambda lc, job: lc.succeed(job, [Output("video", "video", "video/mp4", 3, "myspinbot/x/v.mp4")]),
    "fail": lambda lc, job: lc.fail(job, {"code": "boom", "message": "it broke", "details": {}}),
    "cancel": lambda lc, job: lc.cancel(job),
    "lose": lambda lc, job: lc.lose(job, "its input files are gone", {"reason": "inputs_missing"}),
    "requeue": lambda lc, job: lc.requeue(job, {"stages": 4}),
    "expire": lambda lc, job: lc.expire(job, "expired: its files were removed"),
}


@pytest.fixture
def lifecycle(open_store):
    store = open_store()  # on SQLite and on PostgreSQL
    events = JobEvents()
    seen: list[tuple[str, str]] = []
    events.listen(lambda e: seen.append((e.kind, e.job.status)))
    lc = JobLifecycle(store, events, Clock())
    lc.seen = seen  # type: ignore[attr-defined]
    yield lc


def test_every_change_has_a_method_and_every_status_is_reachable():
    assert set(CALLS) == set(TRANSITIONS)
    assert {target for _, target in TRANSITIONS.values()} == set(STATUSES)


CASES = [(status, change) for status in STATUSES for change in sorted(TRANSITIONS)] + [(NEW, "queue")]
"""Every (status, change); a job with no record yet can only be queued (the other changes read its status)."""


@pytest.mark.parametrize("status, change", CASES)
async def test_a_change_is_allowed_exactly_where_the_table_says(lifecycle, status, change):
    job = Job(id="j", pipeline="lite", status=status or QUEUED, created_at=1.0, message="before")
    if status is not NEW:
        lifecycle.store.save(job)
    sources, target = TRANSITIONS[change]
    before = dataclasses.replace(job)
    if status not in sources:
        with pytest.raises(IllegalTransition):
            CALLS[change](lifecycle, job)
        assert job == before and lifecycle.seen == []  # nothing changed, nothing published
        assert lifecycle.store.get("j") == (None if status is NEW else before)
        return
    CALLS[change](lifecycle, job)
    assert job.status == target and lifecycle.store.get("j") == job  # saved
    if change == "queue":
        assert lifecycle.seen == []  # a new job: nobody can have subscribed yet
    else:
        assert lifecycle.seen[-1] == (STATUS, target)
    if change == "lose":
        assert job.error["code"] == LOST and job.completed_at
    if change == "start":
        assert job.started_at and lifecycle.store.prompt("j") is None  # no prompt stored: nothing to count


async def test_progress_starts_a_queued_job_and_refuses_a_finished_one(lifecycle):
    job = lifecycle.queue(Job(id="p", pipeline="lite", created_at=1.0))
    lifecycle.progress(job, 0.3, {"stages": 4})
    assert lifecycle.store.get("p").status == "running" and lifecycle.store.get("p").progress == 0.3
    lifecycle.cancel(job)
    with pytest.raises(IllegalTransition):
        lifecycle.progress(job, 0.5, {})
    assert lifecycle.store.get("p").progress == 0.3
