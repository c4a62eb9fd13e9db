"""Lip-sync scores on job outputs (tier 1, fake host): with the SyncNet model file in the model
folder, a submitted job's prompt gains a "MySpinBot Lip Sync Score" node per video output (fed
by the save node's VIDEO, skip mode); the block it leaves in the history becomes the output's
``quality``; without the model nothing is added, no ``quality`` appears and /capabilities says
why. Every response is checked against the app's /openapi.json (conftest)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fake_host import lite_body, place_models, upload_inputs
from myspinbot.models.lipsync_score import SCORE_MODEL, lipsync_score_file, lipsync_score_report
from myspinbot.models.locate import ModelLocator, models_dir_folder_dirs
from myspinbot.server.jobs.quality import SCORE_NODE, add_score_nodes, quality_for, score_nodes
from myspinbot.server.jobs.tracking import Run
from myspinbot.server.pipelines import builtin_pipelines

SCORED = {"metric": "syncnet", "model": "syncnet_v2.model", "offset_frames": -2, "lse_d": 7.1234, "lse_c": 3.5,
          "windows": 32, "frames": 38, "faceless_frames": 0, "fps": 25.0, "conf_per_second": [3.0, 4.0],
          "dist_per_second": [7.0, 7.2]}
SKIPPED = {"metric": "syncnet", "model": "syncnet_v2.model",
           "skipped": {"code": "no_face_detected", "message": "no face in any frame"}}


def play(host, prompt_id: str, score_outputs: dict | None) -> None:
    """Play a successful run: the save node writes an mp4, the score node (if any) leaves ``score_outputs``."""
    prompt = host.prompts[prompt_id]
    host.emit("execution_start", prompt_id=prompt_id)
    save_id = next(nid for nid, node in prompt.items() if node["_meta"]["title"] == "Save video")
    sub = Path("myspinbot") / prompt_id
    (host.output_dir / sub).mkdir(parents=True, exist_ok=True)
    (host.output_dir / sub / "output_00001_.mp4").write_bytes(b"mp4 bytes")
    for node_id in prompt:
        host.emit("executing", node=node_id, prompt_id=prompt_id)
    outputs = {save_id: {"images": [{"filename": "output_00001_.mp4", "subfolder": sub.as_posix(), "type": "output"}],
                         "animated": [True]}}
    score_ids = [nid for nid, node in prompt.items() if node["class_type"] == SCORE_NODE]
    if score_outputs is not None and score_ids:
        outputs[score_ids[0]] = score_outputs
    host.histories[prompt_id] = {"outputs": outputs, "status": {"status_str": "success", "completed": True}}
    host.emit("executing", node=None, prompt_id=prompt_id)


async def submit(client, fixtures_dir) -> str:
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))
    assert r.status == 202, await r.text()
    return (await r.json())["id"]


@pytest.fixture
def with_syncnet(host):
    place_models(host, [SCORE_MODEL])


# --- through the job API ------------------------------------------------------------------------

async def test_without_the_model_no_score_node_no_quality_and_capabilities_say_why(client, host, fixtures_dir):
    job_id = await submit(client, fixtures_dir)
    assert not [n for n in host.prompts[job_id].values() if n["class_type"] == SCORE_NODE]
    play(host, job_id, None)
    body = await (await client.get(f"/myspinbot/jobs/{job_id}")).json()
    assert body["status"] == "succeeded"
    assert "quality" not in body["outputs"][0]
    caps = await (await client.get("/myspinbot/capabilities")).json()
    report = caps["lipsync_score"]
    assert report["enabled"] is False and report["model"] == "syncnet_v2" and report["file"] is None
    assert report["fetch_command"] == "python install.py --models syncnet_v2"
    assert "python install.py --models syncnet_v2" in report["reason"] and "syncnet_v2.model" in report["reason"]
    assert report["missing_files"] and report["missing_files"][0].endswith("syncnet/syncnet_v2.model")


async def test_with_the_model_the_video_output_carries_its_score(client, host, fixtures_dir, with_syncnet):
    caps = await (await client.get("/myspinbot/capabilities")).json()
    assert caps["lipsync_score"] == {"enabled": True, "model": "syncnet_v2", "file": "syncnet_v2.model", "reason": None,
                                     "missing_files": [], "fetch_command": "python install.py --models syncnet_v2"}
    job_id = await submit(client, fixtures_dir)
    prompt = host.prompts[job_id]
    [score_id] = [nid for nid, n in prompt.items() if n["class_type"] == SCORE_NODE]
    save = next(n for n in prompt.values() if n["_meta"]["title"] == "Save video")
    inputs = prompt[score_id]["inputs"]
    assert inputs["video"] == save["inputs"]["video"] and inputs["on_error"] == "skip"
    assert inputs["syncnet_model"] == "syncnet_v2.model" and inputs["vshift"] == 15
    assert prompt[score_id]["_meta"]["title"] == "Lip sync score: video"
    play(host, job_id, {"myspinbot_quality": [SCORED]})
    body = await (await client.get(f"/myspinbot/jobs/{job_id}")).json()
    assert body["status"] == "succeeded", body
    [video] = body["outputs"]
    assert video["quality"] == {"av_offset_frames": -2, "lse_d": 7.1234, "lse_c": 3.5}
    assert "storage" not in video


async def test_a_skipped_score_keeps_the_job_and_says_why(client, host, fixtures_dir, with_syncnet):
    job_id = await submit(client, fixtures_dir)
    play(host, job_id, {"myspinbot_quality": [SKIPPED]})
    body = await (await client.get(f"/myspinbot/jobs/{job_id}")).json()
    assert body["status"] == "succeeded", body
    assert body["outputs"][0]["quality"] == {
        "av_offset_frames": None, "lse_d": None, "lse_c": None,
        "skipped": {"code": "no_face_detected", "message": "no face in any frame"}}


async def test_a_score_node_that_left_no_block_leaves_no_quality(client, host, fixtures_dir, with_syncnet):
    job_id = await submit(client, fixtures_dir)
    play(host, job_id, None)
    body = await (await client.get(f"/myspinbot/jobs/{job_id}")).json()
    assert body["status"] == "succeeded" and "quality" not in body["outputs"][0]


async def test_the_score_survives_the_store_and_a_requeued_prompt(client, api, host, fixtures_dir, with_syncnet):
    job_id = await submit(client, fixtures_dir)
    record = api.store.prompt(job_id)  # what a restarted ComfyUI queues again (recovery.py)
    run = Run.for_prompt(builtin_pipelines()["lite"], record.prompt, record.output_nodes)
    assert run.score_nodes == score_nodes(host.prompts[job_id]) == {"video": next(
        nid for nid, n in host.prompts[job_id].items() if n["class_type"] == SCORE_NODE)}
    play(host, job_id, {"myspinbot_quality": [SCORED]})
    stored = api.store.get(job_id)
    assert stored.outputs[0].quality == {"av_offset_frames": -2, "lse_d": 7.1234, "lse_c": 3.5}


async def test_scores_turned_off_add_no_node_even_with_the_model(aiohttp_client, host, fixtures_dir, with_syncnet):
    from fake_host import compose_app
    from myspinbot.server.settings import Settings

    api = compose_app(host, Settings(lipsync_score=False))
    try:
        client = await aiohttp_client(api.app)
        caps = await (await client.get("/myspinbot/capabilities")).json()
        report = caps["lipsync_score"]
        assert report["enabled"] is False and "MYSPINBOT_LIPSYNC_SCORE=false" in report["reason"]
        job_id = await submit(client, fixtures_dir)
        assert not [n for n in host.prompts[job_id].values() if n["class_type"] == SCORE_NODE]
    finally:
        api.store.close()


# --- the parts ----------------------------------------------------------------------------------

def lite_prompt():
    lite = builtin_pipelines()["lite"]
    return lite, lite.build(lite.coerce({"portrait": "p.png", "script": "Hello."}), "myspinbot/x/video")


def test_every_builtin_pipeline_gets_a_score_node_on_its_video_output():
    for name, pipeline in builtin_pipelines().items():
        if not any(o.type == "video" for o in pipeline.outputs):
            assert name == "train_profile"  # a LoRA and a reference photo, nothing to score
            continue
        values = {"portrait": "p.png", "script": "Hi.", "voice_sample": "v.wav", "voice_transcript": "Hi."}
        if name == "lite":
            values = {"portrait": "p.png", "script": "Hi."}
        built = pipeline.build(pipeline.coerce(values), "myspinbot/x/video")
        types = {o.name: o.type for o in pipeline.outputs}
        added = add_score_nodes(built.prompt, built.output_nodes, types, "syncnet_v2.model")
        videos = [o.name for o in pipeline.outputs if o.type == "video"]
        assert sorted(added) == sorted(videos), name
        for output, score_id in added.items():
            save = built.prompt[built.output_nodes[output]]
            assert built.prompt[score_id]["inputs"]["video"] == save["inputs"]["video"], name
            assert score_id not in built.output_nodes.values() and score_id.isdigit()
        assert score_nodes(built.prompt) == added


def test_outputs_without_a_linked_video_or_of_another_type_are_not_scored():
    _, built = lite_prompt()
    prompt = built.prompt
    save = built.output_nodes["video"]
    assert add_score_nodes(prompt, built.output_nodes, {"video": "audio"}, "s.model") == {}
    prompt[save]["inputs"]["video"] = "not a link"
    assert add_score_nodes(prompt, built.output_nodes, {"video": "video"}, "s.model") == {}
    assert not [n for n in prompt.values() if n["class_type"] == SCORE_NODE]


@pytest.mark.parametrize("block, expected", [
    (SCORED, {"av_offset_frames": -2, "lse_d": 7.1234, "lse_c": 3.5}),
    (SKIPPED, {"av_offset_frames": None, "lse_d": None, "lse_c": None,
               "skipped": {"code": "no_face_detected", "message": "no face in any frame"}}),
    ({**SCORED, "lse_d": math.nan}, "invalid_score"),
    ({**SCORED, "lse_c": None}, "invalid_score"),
    ("not a dict", None),
])
def test_quality_from_the_history_block(block, expected):
    found = quality_for({"7": {"myspinbot_quality": [block]}}, "7")
    if expected == "invalid_score":
        assert found["skipped"]["code"] == "invalid_score" and found["lse_d"] is None
    else:
        assert found == expected
    assert quality_for({"7": {"myspinbot_quality": [SCORED]}}, None) is None
    assert quality_for({}, "7") is None and quality_for({"7": {"images": []}}, "7") is None


def test_model_presence_and_report(tmp_path):
    locator = ModelLocator(models_dir_folder_dirs(tmp_path))
    assert lipsync_score_file(locator) is None
    report = lipsync_score_report(locator)
    assert report["enabled"] is False and "python install.py --models syncnet_v2" in report["reason"]
    (tmp_path / "syncnet").mkdir()
    (tmp_path / "syncnet" / "syncnet_v2.model").write_bytes(b"weights")
    assert lipsync_score_file(locator) == "syncnet_v2.model"
    assert lipsync_score_report(locator)["enabled"] is True
    bare = ModelLocator(models_dir_folder_dirs(tmp_path), {})
    assert lipsync_score_file(bare) is None and lipsync_score_report(bare)["enabled"] is False
