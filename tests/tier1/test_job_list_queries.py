"""The job list's queries: every statement a list page runs reads an index in list order (no full
scan, no sort), and the pages are the jobs a plain filter-and-sort gives, cursor after cursor."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from myspinbot.server.model import STATUSES, Job
from myspinbot.server.repos.jobs import finished_sql, page_sql
from myspinbot.server.store import JobStore

from backends import BACKENDS, new_store

PIPELINES = ("lite", "animate", "infinitetalk")


def fill(store: JobStore) -> JobStore:
    rnd = random.Random(7)
    with store.db.transaction():
        for n in range(3000):
            created = 1_700_000_000.0 + n // 3  # three jobs per second: ties broken by id
            store.save(Job(id=f"{rnd.getrandbits(64):016x}", pipeline=rnd.choice(PIPELINES), status=rnd.choice(STATUSES),
                           created_at=created, completed_at=created + 30 if rnd.random() < 0.9 else None))
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The SQLite store (its query plans are checked)."""
    store = fill(JobStore(tmp_path_factory.mktemp("db") / "jobs.sqlite3"))
    yield store
    store.close()


@pytest.fixture(scope="module", params=BACKENDS)
def any_store(request, tmp_path_factory):
    """The same jobs on each backend (the pages must be the same)."""
    store = fill(new_store(request.param, request, tmp_path_factory.mktemp("db")))
    yield store
    store.close()


def plan(store: JobStore, sql: str, args: tuple) -> list[str]:
    with store.db.read() as conn:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]


SHAPES = list(itertools.product((False, True), repeat=3))


@pytest.mark.parametrize("status,pipeline,cursor", SHAPES)
def test_each_list_statement_reads_one_index_in_list_order(store, status, pipeline, cursor):
    args = (("succeeded",) if status else ()) + (("lite",) if pipeline else ()) + ((1_700_000_500.0, "8") if cursor else ()) + (51,)
    steps = plan(store, page_sql(status=status, pipeline=pipeline, cursor=cursor), args)
    index = {(False, False): "jobs_by_created", (True, False): "jobs_by_status", (False, True): "jobs_by_pipeline",
             (True, True): "jobs_by_status_pipeline"}[(status, pipeline)]
    assert len(steps) == 1, steps
    assert re.fullmatch(rf"(SCAN|SEARCH) jobs USING INDEX {index}\b.*", steps[0]), steps
    if cursor:
        assert "(created_at,id)<(?,?)" in steps[0]  # the cursor seeks into the index, it does not filter rows
    assert not any("TEMP B-TREE" in s for s in steps)


def test_a_list_page_runs_only_those_statements(store):
    executed: list[str] = []
    with store.db.read() as conn:
        conn.set_trace_callback(executed.append)
    try:
        store.page(statuses=("succeeded", "failed", "expired"), pipelines=("lite", "animate", "nope"), limit=51,
                   after=(1_700_000_500.0, "8"))
    finally:
        with store.db.read() as conn:
            conn.set_trace_callback(None)
    probes = [s for s in executed if s.startswith("SELECT 1 FROM jobs WHERE pipeline")]
    reads = [s for s in executed if s not in probes]
    assert len(probes) == 3 and len(reads) == 3 * 2  # 'nope' has no jobs: no reads for it
    shape = page_sql(status=True, pipeline=True, cursor=True)
    pattern = re.escape(shape).replace(r"\?", ".+?")
    assert all(re.fullmatch(pattern, s) for s in reads), reads[0]
    assert plan(store, "SELECT 1 FROM jobs WHERE pipeline = ? LIMIT 1", ("nope",)) == [
        "SEARCH jobs USING COVERING INDEX jobs_by_pipeline (pipeline=?)"]


def test_retention_reads_finished_jobs_through_an_index(store):
    steps = plan(store, finished_sql(), ("succeeded", 1_700_000_100.0, 500))
    assert steps == ["SEARCH jobs USING INDEX jobs_by_finish (status=? AND <expr><?)"]


@pytest.mark.parametrize("statuses,pipelines", [
    ((), ()), (("succeeded",), ()), (("queued", "failed", "expired"), ()), ((), ("animate",)),
    (("succeeded", "canceled"), ("lite", "infinitetalk", "unknown")), (("running",), ("animate",)), ((), ("unknown",)),
])
def test_pages_follow_each_other_newest_first_as_a_plain_sort_would(any_store, statuses, pipelines):
    store = any_store
    everything = store.page(limit=10_000)
    expected = [j.id for j in everything
                if (not statuses or j.status in statuses) and (not pipelines or j.pipeline in pipelines)]
    assert [j.id for j in everything] == [j.id for j in sorted(everything, key=lambda j: (j.created_at, j.id), reverse=True)]
    seen, after = [], None
    while True:
        page = store.page(statuses=statuses, pipelines=pipelines, limit=37, after=after)
        seen += [j.id for j in page]
        if len(page) < 37:
            break
        after = (page[-1].created_at, page[-1].id)
    assert seen == expected


def test_retention_gets_the_oldest_finished_jobs_first(any_store):
    store = any_store
    statuses = ("succeeded", "failed", "canceled")
    cutoff = 1_700_000_400.0
    every = store.page(limit=10_000)
    expected = sorted((j for j in every if j.status in statuses and (j.completed_at or j.created_at) < cutoff),
                      key=lambda j: j.completed_at or j.created_at)
    got = store.finished_before(statuses, cutoff, limit=100)
    assert [j.completed_at or j.created_at for j in got] == [j.completed_at or j.created_at for j in expected[:100]]
    assert {j.id for j in store.finished_before(statuses, cutoff, limit=10_000)} == {j.id for j in expected}
