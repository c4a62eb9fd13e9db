"""The job API, composed as production composes it, on a plain aiohttp app with a fake ComfyUI host (tier 1)."""

from __future__ import annotations

import io

import aiohttp
import pytest

from fake_host import restart
from myspinbot.server.pipelines import node_by_title


def form(fixtures_dir, pipeline="lite", portrait="portrait_astronaut.png", audio="speech_front_left.wav", **fields):
    data = aiohttp.FormData()
    if pipeline is not None:
        data.add_field("pipeline", pipeline)
    if portrait is not None:
        payload = portrait if isinstance(portrait, bytes) else (fixtures_dir / portrait).read_bytes()
        data.add_field("portrait", io.BytesIO(payload), filename="me.png", content_type="image/png")
    if audio is not None:
        payload = audio if isinstance(audio, bytes) else (fixtures_dir / audio).read_bytes()
        data.add_field("audio", io.BytesIO(payload), filename="speech.wav", content_type="audio/wav")
    for key, value in fields.items():
        data.add_field(key, value)
    return data


async def test_submit_with_recording_queues_bound_prompt(client, host, fixtures_dir):
    r = await client.post("/myspinbot/jobs", data=form(fixtures_dir))
    assert r.status == 202, await r.text()
    job = await r.json()
    assert set(job) >= {"id", "pipeline", "status", "created_at", "started_at", "completed_at", "progress", "outputs", "error", "urls"}
    assert job["status"] == "queued" and job["pipeline"] == "lite" and job["error"] is None
    assert job["urls"]["self"] == f"/myspinbot/jobs/{job['id']}"
    prompt = host.prompts[job["id"]]
    assert prompt[node_by_title(prompt, "Portrait")]["inputs"]["image"] == f"myspinbot/{job['id']}/portrait.png"
    assert prompt[node_by_title(prompt, "Speech recording")]["inputs"]["audio"] == f"myspinbot/{job['id']}/speech.wav"
    assert "MySpinBotSpeakEspeak" not in {n["class_type"] for n in prompt.values()}
    assert (host.input_dir / "myspinbot" / job["id"] / "portrait.png").is_file()
    save = prompt[node_by_title(prompt, "Save video")]["inputs"]
    assert save["filename_prefix"] == f"myspinbot/{job['id']}/output"


async def test_submit_with_script_speaks_it(client, host, fixtures_dir):
    r = await client.post("/myspinbot/jobs", data=form(fixtures_dir, audio=None, script="Hello there.", voice="de"))
    assert r.status == 202, await r.text()
    prompt = host.prompts[(await r.json())["id"]]
    speak = node_by_title(prompt, "Script speech")
    assert prompt[speak]["inputs"]["text"] == "Hello there." and prompt[speak]["inputs"]["voice"] == "de"
    assert prompt[node_by_title(prompt, "Animate portrait")]["inputs"]["audio"] == [speak, 0]
    assert "LoadAudio" not in {n["class_type"] for n in prompt.values()}


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"pipeline": "nope"}, 422, "unknown_pipeline"),
        ({"pipeline": None}, 422, "missing_pipeline"),
        ({"portrait": None}, 422, "missing_portrait"),
        ({"audio": None}, 422, "missing_speech"),
        ({"portrait": b"\x89PNG\r\n\x1a\n this is not an image"}, 400, "invalid_image"),
        ({"audio": b"just some text, not audio at all" * 10}, 400, "invalid_audio"),
        ({"fps": "fast"}, 422, "invalid_parameter"),
        ({"colour": "blue"}, 422, "unknown_parameter"),
        ({"script": "both"}, 422, "conflicting_inputs"),
    ],
)
async def test_bad_submissions_get_json_errors_and_leave_nothing(client, host, fixtures_dir, kwargs, status, code):
    r = await client.post("/myspinbot/jobs", data=form(fixtures_dir, **kwargs))
    assert r.status == status, await r.text()
    body = await r.json()
    assert body["error"]["code"] == code and body["error"]["message"] and "details" in body["error"]
    assert host.prompts == {}
    staged = host.input_dir / "myspinbot"
    assert not staged.exists() or not any(staged.iterdir())


async def test_body_neither_multipart_nor_json_is_415(client):
    r = await client.post("/myspinbot/jobs", data=b"pipeline=lite", headers={"Content-Type": "text/plain"})
    assert r.status == 415 and (await r.json())["error"]["code"] == "unsupported_media_type"
    # JSON bodies are submissions too (test_job_assets.py); this one lacks the portrait.
    r = await client.post("/myspinbot/jobs", json={"pipeline": "lite"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "missing_portrait"


async def test_rejected_workflow_records_no_job(client, host, service, fixtures_dir):
    host.reject_next = True
    r = await client.post("/myspinbot/jobs", data=form(fixtures_dir))
    assert r.status == 422 and (await r.json())["error"]["code"] == "invalid_workflow"
    assert service.store.with_status("queued", "running", "failed") == []


async def test_job_lifecycle_to_succeeded_with_downloadable_video(client, host, fixtures_dir):
    job = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir))).json()
    prompt = host.prompts[job["id"]]
    host.emit("execution_start", prompt_id=job["id"])
    running = await (await client.get(job["urls"]["self"])).json()
    assert running["status"] == "running" and running["started_at"]
    host.run_success(job["id"], {node_by_title(prompt, "Save video"): b"fake mp4 bytes"})
    done = await (await client.get(job["urls"]["self"])).json()
    assert done["status"] == "succeeded" and done["progress"]["value"] == 1.0 and done["completed_at"]
    [video] = done["outputs"]
    assert video == {"name": "video", "type": "video", "content_type": "video/mp4", "size_bytes": 14,
                     "url": f"/myspinbot/jobs/{job['id']}/outputs/video"}
    r = await client.get(video["url"])
    assert r.status == 200 and r.headers["Content-Type"] == "video/mp4" and await r.read() == b"fake mp4 bytes"


async def test_node_error_code_reaches_the_job(client, host, fixtures_dir):
    job = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir))).json()
    host.emit("execution_start", prompt_id=job["id"])
    host.emit("execution_error", prompt_id=job["id"], node_type="MySpinBotAnimatePortraitLite",
              exception_type="myspinbot.errors.NoFaceDetectedError",
              exception_message="[no_face_detected] no face found in the portrait")
    host.emit("executing", node=None, prompt_id=job["id"])
    failed = await (await client.get(job["urls"]["self"])).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "no_face_detected"
    assert failed["error"]["message"] == "no face found in the portrait"


async def test_interrupted_job_is_canceled(client, host, fixtures_dir):
    job = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir))).json()
    host.emit("execution_start", prompt_id=job["id"])
    host.emit("execution_interrupted", prompt_id=job["id"], node_id="4")
    host.emit("executing", node=None, prompt_id=job["id"])
    assert (await (await client.get(job["urls"]["self"])).json())["status"] == "canceled"


async def test_missing_output_file_fails_the_job(client, host, fixtures_dir):
    job = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir))).json()
    host.run_success(job["id"], {})
    failed = await (await client.get(job["urls"]["self"])).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "output_missing"


async def test_unknown_job_and_output_names_are_404(client, host, fixtures_dir):
    r = await client.get("/myspinbot/jobs/00000000-0000-0000-0000-000000000000")
    assert r.status == 404 and (await r.json())["error"]["code"] == "job_not_found"
    assert (await client.get("/myspinbot/jobs/not-a-job")).status == 404
    # A name that could lead elsewhere never reaches the handler (the guard, as in production).
    r = await client.get("/myspinbot/jobs/..%2F..%2Fetc")
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_path_parameter"
    job = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir))).json()
    for name in ("nope", "video"):
        r = await client.get(f"/myspinbot/jobs/{job['id']}/outputs/{name}")
        assert r.status == 404 and (await r.json())["error"]["code"] == "output_not_found"
    r = await client.get(f"/myspinbot/jobs/{job['id']}/outputs/..%2F..%2Fjobs.sqlite3")
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_path_parameter"


def test_restart_marks_unfinished_jobs_lost(host, service, tmp_path):
    from myspinbot.server.model import Job

    service.store.save(Job(id="a", pipeline="lite", status="running", created_at=1.0))
    service.store.save(Job(id="b", pipeline="lite", status="succeeded", created_at=2.0))
    restarted = restart(host)
    assert restarted.recovered.lost == ["a"]
    assert restarted.service.get("a").status == "failed" and restarted.service.get("a").error["code"] == "lost_on_restart"
    assert restarted.service.get("b").status == "succeeded"


def test_only_a_leading_code_of_the_packs_own_errors_counts():
    from myspinbot.errors import NoFaceDetectedError, code_from_message

    own = "myspinbot.errors.NoFaceDetectedError"
    assert code_from_message(str(NoFaceDetectedError("no face")), exception_type=own) == "no_face_detected"
    # A bracketed word elsewhere in a message (a ComfyUI annotated file name) is not a code.
    assert code_from_message("Invalid image file: portrait.png [input]", exception_type="builtins.ValueError") == "execution_error"
    assert code_from_message("cannot open portrait.png [input]", exception_type=own) == "execution_error"
    # Another pack's exception that happens to start with brackets is not ours either.
    assert code_from_message("[input] broken", exception_type="other_pack.errors.Boom") == "execution_error"
    assert code_from_message("[no_face_detected] x", exception_type="custom_nodes.myspinbot.errors.NoFaceDetectedError") == "no_face_detected"
