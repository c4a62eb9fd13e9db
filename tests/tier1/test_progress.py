"""Weighted stage progress and ETA (``server/progress.py``) and how the job service reports them (tier 1)."""

from __future__ import annotations

import pytest

from fake_host import lite_body, upload_inputs  # noqa: F401
from myspinbot.server.pipelines import Stage, builtin_pipelines, node_by_title
from myspinbot.server.progress import (DEFAULT_STORE_WEIGHT, VALUE_CAP, EtaEstimator, ProgressTracker, initial_detail,
                                       stage_plan)


# --- the plan ------------------------------------------------------------------------------

def test_pipelines_declare_weights_that_add_up_to_one():
    pipelines = builtin_pipelines()
    lite = stage_plan(pipelines["lite"].stages)
    assert lite.names == ("speech", "animate", "encode", "store")
    assert lite.weights == pytest.approx((0.1, 0.75, 0.1, 0.05))
    f5 = stage_plan(pipelines["f5"].stages)
    assert f5.names == ("script", "speech", "animate", "encode", "store")
    assert f5.weights == pytest.approx((0.1, 0.35, 0.45, 0.05, 0.05))
    for pipeline in pipelines.values():
        # What each pipeline declares adds up to 1 (stage_plan would rescale any other sum, so its
        # output always does): the plan then uses the weights as written.
        declared = [stage.weight for stage in pipeline.stages]
        assert None not in declared, (pipeline.name, declared)
        assert sum(declared) == pytest.approx(1.0), (pipeline.name, declared)
        assert stage_plan(pipeline.stages).weights == pytest.approx(tuple(declared))
        assert pipeline.stages[-1].name == "store" and pipeline.stages[-1].nodes == ()


def test_unweighted_stages_share_what_is_left_and_store_is_implicit():
    plan = stage_plan([Stage("a", ("A",), "a", weight=0.5), Stage("b", ("B",), "b"), Stage("c", ("C",), "c")])
    assert plan.names == ("a", "b", "c", "store")
    assert plan.weights == pytest.approx((0.5, 0.225, 0.225, DEFAULT_STORE_WEIGHT))
    equal = stage_plan([Stage("a", ("A",), "a"), Stage("b", ("B",), "b")])
    assert equal.weights == pytest.approx((0.475, 0.475, 0.05))
    # Weights that add up to more than 1 are scaled; unweighted ones then get the average of the given ones.
    over = stage_plan([Stage("a", ("A",), "a", weight=3), Stage("b", ("B",), "b"), Stage("store", (), "s", weight=1)])
    assert over.names == ("a", "b", "store") and over.weights == pytest.approx((0.5, 2 / 6, 1 / 6))


def test_stages_pruned_from_the_prompt_leave_the_plan():
    lite = builtin_pipelines()["lite"]
    plan = stage_plan(lite.stages, present={"animate", "encode"})
    assert plan.names == ("animate", "encode", "store")
    assert plan.weights == pytest.approx((0.75 / 0.9, 0.1 / 0.9, 0.05 / 0.9))
    assert plan.index("speech") is None and plan.index("encode") == 1


# --- the value -----------------------------------------------------------------------------

def tracker() -> ProgressTracker:
    lite = builtin_pipelines()["lite"]
    return ProgressTracker.for_prompt(lite.stages, {"2": lite.stages[0], "4": lite.stages[1], "5": lite.stages[2]})


def test_value_is_finished_stage_weights_plus_the_current_stage_fraction():
    t = tracker()
    assert t.value({}) == 0.0
    assert t.value({"1": 1.0, "2": 1.0}) == pytest.approx(0.1)  # node 1 has no stage
    assert t.value({"2": 1.0, "4": 0.4}) == pytest.approx(0.1 + 0.75 * 0.4)
    assert t.value({"2": 1.0, "4": 1.0, "5": 1.0}) == pytest.approx(0.95)  # store is left: below 1


def test_measure_never_goes_down_and_stays_below_one():
    t = tracker()
    high = t.measure({"2": 1.0, "4": 0.8}, "animate", (8, 10), now=10.0)
    assert high.value == pytest.approx(0.7) and high.detail["stage_index"] == 1 and high.detail["stages"] == 4
    assert (high.detail["step"], high.detail["steps"]) == (8, 10)
    # A node that restarts its own progress (a second pass) does not pull the job back.
    again = t.measure({"2": 1.0, "4": 0.1}, "animate", (1, 10), now=11.0, floor=high.value)
    assert again.value == high.value
    assert t.measure({"2": 1.0, "4": 1.0, "5": 1.0}, "encode", None, now=12.0, floor=0.999).value == VALUE_CAP


def test_initial_detail_knows_the_stage_count_only():
    assert initial_detail(tracker().plan) == {"stage_index": None, "stages": 4, "step": None, "steps": None,
                                              "eta_seconds": None}


# --- the ETA -------------------------------------------------------------------------------

def test_eta_is_none_until_measurable_then_follows_the_rate():
    eta = EtaEstimator(min_elapsed=2.0, min_progress=0.02, min_interval=0.5)
    assert eta.update(0.0, 100.0) is None
    assert eta.update(0.01, 100.5) is None  # too early, too little
    assert eta.update(0.02, 101.0) is None  # moved enough, not long enough
    value = 0.02
    for i in range(3, 31):  # 0.01 per second from here on (the first, faster 0.5 s fade out of the average)
        value += 0.005
        result = eta.update(value, 100.0 + i * 0.5)
    assert result == pytest.approx((1 - value) / 0.01, rel=0.05)


def test_eta_is_smoothed():
    eta = EtaEstimator(min_elapsed=0.0, min_progress=0.0, min_interval=1.0, smoothing=0.3)
    eta.update(0.0, 0.0)
    eta.update(0.1, 1.0)  # 0.1/s
    first = eta.rate
    eta.update(0.5, 2.0)  # a burst of 0.4/s (a cached stage)
    assert first == pytest.approx(0.1) and eta.rate == pytest.approx(0.3 * 0.4 + 0.7 * 0.1)
    eta.update(0.5, 3.0)  # a stall
    assert 0 < eta.rate < 0.19
    assert eta.eta(0.5, 3.0) == pytest.approx(0.5 / eta.rate)


def test_samples_closer_than_the_interval_do_not_move_the_rate():
    eta = EtaEstimator(min_elapsed=0.0, min_progress=0.0, min_interval=1.0)
    eta.update(0.0, 0.0)
    eta.update(0.1, 1.0)
    for k in range(1, 10):
        eta.update(0.1 + 0.01 * k, 1.0 + 0.05 * k)
    assert eta.rate == pytest.approx(0.1)


def test_worth_saving_throttles_small_changes():
    t = tracker()
    m = t.measure({"2": 1.0, "4": 0.5}, "animate", (5, 10), now=0.0)
    assert t.worth_saving(0.0, {}, m, now=0.0)
    small = t.measure({"2": 1.0, "4": 0.501}, "animate", (5.01, 10), now=0.1, floor=m.value)
    assert not t.worth_saving(m.value, m.detail, small, now=0.1)
    assert t.worth_saving(m.value, m.detail, small, now=1.2)  # a second later it goes out
    assert not t.worth_saving(small.value, small.detail, small, now=5.0)  # nothing changed
    assert t.worth_saving(small.value, small.detail, small, now=5.1, stage_changed=True)


# --- through the service -------------------------------------------------------------------

async def test_the_job_reports_weighted_progress_steps_and_an_eta(client, host, service, clock, fixtures_dir):
    clock.step = 0.0
    portrait, audio = await upload_inputs(client, fixtures_dir)
    job = await (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))).json()
    assert job["progress"]["stages"] == 4 and job["progress"]["eta_seconds"] is None
    prompt, jid = host.prompts[job["id"]], job["id"]
    animate = node_by_title(prompt, "Animate portrait")

    async def progress():
        return (await (await client.get(job["urls"]["self"])).json())["progress"]

    host.emit("execution_start", prompt_id=jid)
    host.emit("executing", node=node_by_title(prompt, "Portrait"), prompt_id=jid)
    host.emit("executing", node=node_by_title(prompt, "Speech recording"), prompt_id=jid)
    clock.now += 1.0
    host.emit("executing", node=animate, prompt_id=jid)
    p = await progress()
    assert p["value"] == pytest.approx(0.1) and p["stage_index"] == 1 and p["step"] is None
    values = []
    for frame in range(1, 101):  # 100 frames, 10 a second
        clock.now += 0.1
        host.emit("progress", node=animate, value=frame, max=100, prompt_id=jid)
        values.append((await progress())["value"])
    assert values == sorted(values)  # monotonic
    p = await progress()
    assert (p["step"], p["steps"]) == (100, 100) and p["value"] == pytest.approx(0.85)
    # 0.75 of the job in 10 s: the remaining 0.15 take about 2 s
    assert p["eta_seconds"] == pytest.approx(2.0, abs=0.5)
    host.emit("executing", node=node_by_title(prompt, "Save video"), prompt_id=jid)
    p = await progress()
    assert p["stage"] == "encode" and p["stage_index"] == 2 and p["step"] is None and p["value"] < 1
    host.run_success(jid, {node_by_title(prompt, "Save video"): b"mp4"})
    done = await progress()
    assert done == {"value": 1.0, "stage": "store", "message": "done: 1 output stored", "stage_index": 3, "stages": 4,
                    "step": None, "steps": None, "eta_seconds": 0.0}


async def test_cached_stages_count_as_done(client, host, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    job = await (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))).json()
    prompt, jid = host.prompts[job["id"]], job["id"]
    host.emit("execution_start", prompt_id=jid)
    host.emit("execution_cached", nodes=[node_by_title(prompt, "Portrait"), node_by_title(prompt, "Speech recording")],
              prompt_id=jid)
    host.emit("executing", node=node_by_title(prompt, "Animate portrait"), prompt_id=jid)
    p = (await (await client.get(job["urls"]["self"])).json())["progress"]
    assert p["value"] == pytest.approx(0.1) and p["stage"] == "animate"


async def test_a_failed_job_keeps_its_value_and_drops_the_live_fields(client, host, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    job = await (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))).json()
    prompt, jid = host.prompts[job["id"]], job["id"]
    host.emit("execution_start", prompt_id=jid)
    host.emit("executing", node=node_by_title(prompt, "Animate portrait"), prompt_id=jid)
    host.emit("progress", node=node_by_title(prompt, "Animate portrait"), value=3, max=10, prompt_id=jid)
    host.emit("execution_error", prompt_id=jid, exception_message="boom", node_type="x", exception_type="y")
    host.emit("executing", node=None, prompt_id=jid)
    p = (await (await client.get(job["urls"]["self"])).json())["progress"]
    assert p["value"] == pytest.approx(0.75 * 0.3) and p["stage_index"] == 1
    assert p["step"] is None and p["steps"] is None and p["eta_seconds"] is None
