"""``GET /myspinbot/metrics`` (tier 1, fake host): Prometheus text with jobs by status, queue
depth, stage durations, webhook deliveries and HTTP requests, from a registry of its own."""

from __future__ import annotations

from pathlib import Path

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fake_host import lite_body, upload_inputs  # noqa: F401
from myspinbot.server.jobs import JobService
from myspinbot.server.metrics import Metrics
from myspinbot.server.pipelines import builtin_pipelines, node_by_title
from myspinbot.server.store import JobStore
from myspinbot.server.settings import Settings
from test_auth import AUTH, guarded_api


class Tick:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tick():
    return Tick()


@pytest.fixture
def api(host):
    return guarded_api(host, listen="0.0.0.0")


@pytest.fixture
async def client(aiohttp_client, api, tick):
    api.metrics.clock = tick  # the stage durations are measured on this clock
    return await aiohttp_client(api.app, headers=AUTH)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed, name, **labels) -> float:
    return parsed[(name, tuple(sorted(labels.items())))]


def run_with_stage_times(host, tick, job_id: str, stage_seconds: dict[str, float]) -> None:
    """Play a successful run node by node, moving the clock while each stage's nodes run."""
    prompt = host.prompts[job_id]
    host.emit("execution_start", prompt_id=job_id)
    outputs = {}
    for title, stage in (("Speech recording", "speech"), ("Animate portrait", "animate"), ("Save video", "encode")):
        node = node_by_title(prompt, title)
        host.emit("executing", node=node, prompt_id=job_id)
        tick.now += stage_seconds[stage]
    save = node_by_title(prompt, "Save video")
    sub = Path("myspinbot") / job_id
    (host.output_dir / sub).mkdir(parents=True, exist_ok=True)
    (host.output_dir / sub / "out.mp4").write_bytes(b"mp4")
    outputs[save] = {"images": [{"filename": "out.mp4", "subfolder": sub.as_posix(), "type": "output"}]}
    host.histories[job_id] = {"outputs": outputs, "status": {"status_str": "success", "completed": True}}
    host.emit("executing", node=None, prompt_id=job_id)


async def test_metrics_after_a_few_jobs(client, host, service, tick, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    jobs = []
    for seed in range(4):
        r = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio, seed=seed))
        assert r.status == 202
        jobs.append(await r.json())
    run_with_stage_times(host, tick, jobs[0]["id"], {"speech": 2.0, "animate": 40.0, "encode": 3.0})
    host.emit("execution_start", prompt_id=jobs[1]["id"])
    host.emit("execution_error", prompt_id=jobs[1]["id"], exception_message="[no_face_detected] no face")
    host.emit("executing", node=None, prompt_id=jobs[1]["id"])
    assert (await client.post(jobs[2]["urls"]["cancel"])).status == 200
    assert (await client.get("/myspinbot/jobs", headers={"Authorization": "Bearer wrong"})).status == 401

    r = await client.get("/myspinbot/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await r.text()
    parsed = samples(text)

    assert value(parsed, "myspinbot_jobs", status="succeeded") == 1
    assert value(parsed, "myspinbot_jobs", status="failed") == 1
    assert value(parsed, "myspinbot_jobs", status="canceled") == 1
    assert value(parsed, "myspinbot_jobs", status="queued") == 1
    assert value(parsed, "myspinbot_jobs", status="running") == 0
    assert value(parsed, "myspinbot_queue_depth") == 1
    assert value(parsed, "myspinbot_queue_limit") == service.max_queued

    for stage, seconds in (("speech", 2.0), ("animate", 40.0), ("encode", 3.0)):
        assert value(parsed, "myspinbot_stage_duration_seconds_count", pipeline="lite", stage=stage) == 1
        assert value(parsed, "myspinbot_stage_duration_seconds_sum", pipeline="lite", stage=stage) == seconds
    assert value(parsed, "myspinbot_stage_duration_seconds_bucket", pipeline="lite", stage="animate", le="60.0") == 1
    assert value(parsed, "myspinbot_stage_duration_seconds_bucket", pipeline="lite", stage="animate", le="30.0") == 0

    assert value(parsed, "myspinbot_job_status_changes_total", pipeline="lite", status="running") == 2
    assert value(parsed, "myspinbot_job_status_changes_total", pipeline="lite", status="succeeded") == 1
    assert value(parsed, "myspinbot_job_status_changes_total", pipeline="lite", status="failed") == 1
    assert value(parsed, "myspinbot_job_status_changes_total", pipeline="lite", status="canceled") == 1

    requests = "myspinbot_http_requests_total"
    assert value(parsed, requests, route="/myspinbot/jobs", method="POST", status="202") == 4
    assert value(parsed, requests, route="/myspinbot/assets", method="POST", status="201") == 2
    assert value(parsed, requests, route="/myspinbot/jobs/{job_id}/cancel", method="POST", status="200") == 1
    assert value(parsed, requests, route="/myspinbot/jobs", method="GET", status="401") == 1
    assert value(parsed, "myspinbot_http_request_duration_seconds_count", route="/myspinbot/jobs", method="POST") == 4
    assert "# TYPE myspinbot_http_requests_total counter" in text


async def test_api_mirror_and_unknown_paths_fold_into_few_route_labels(client):
    for path in ("/api/myspinbot/jobs", "/myspinbot/jobs", "/myspinbot/nope/1", "/myspinbot/nope/2"):
        await client.get(path)
    parsed = samples(await (await client.get("/myspinbot/metrics")).text())
    requests = "myspinbot_http_requests_total"
    assert value(parsed, requests, route="/myspinbot/jobs", method="GET", status="200") == 2
    assert value(parsed, requests, route="unmatched", method="GET", status="404") == 2
    assert not any("nope" in str(labels) for (_, labels) in parsed)


def test_each_service_has_its_own_registry_and_the_global_one_stays_clean(host, tmp_path):
    first = JobService(host, JobStore(tmp_path / "a.sqlite3"), builtin_pipelines(), Settings())
    second = JobService(host, JobStore(tmp_path / "b.sqlite3"), builtin_pipelines(), Settings())
    a, b = Metrics(first), Metrics(second)
    a.observe_request("/myspinbot/jobs", "GET", 200, 0.01)
    assert 'myspinbot_http_requests_total{method="GET",route="/myspinbot/jobs",status="200"} 1.0' in a.render().decode()
    assert "myspinbot_http_requests_total{" not in b.render().decode()
    assert "myspinbot" not in prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    a.close()
    b.close()
