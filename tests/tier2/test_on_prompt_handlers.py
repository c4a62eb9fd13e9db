"""Tier 2: a job's prompt goes through ComfyUI's own submit path, so other packs see it.

Core's ``POST /prompt`` hands every prompt to the handlers packs register with
``PromptServer.instance.add_on_prompt_handler`` before it validates and queues it. A job
submitted over ``POST /myspinbot/jobs`` must reach them too. A tiny second pack, written into
the test ComfyUI's ``custom_nodes/`` beside this one, records every prompt its handler sees (and
marks the prompt's ``extra_data``, as a pack may); the test submits a lite job, then cancels it
(through core's own cancel where this ComfyUI has it) and checks what the handler recorded.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from comfy_process import ComfyProcess, comfyui_dir

SPY_PACK = '''"""A stand-in for another custom node pack: records every prompt its on-prompt handler sees."""
import json

from server import PromptServer

RECORD = {record!r}


def record(json_data):
    prompt = json_data.get("prompt") or {{}}
    with open(RECORD, "a", encoding="utf-8") as out:
        out.write(json.dumps({{"prompt_id": json_data.get("prompt_id"), "client_id": json_data.get("client_id"),
                              "class_types": sorted({{n.get("class_type") for n in prompt.values()}})}}) + "\\n")
    json_data.setdefault("extra_data", {{}})["seen_by_spy"] = True
    return json_data


PromptServer.instance.add_on_prompt_handler(record)
NODE_CLASS_MAPPINGS = {{}}
'''


@pytest.fixture(scope="module")
def comfy_with_spy(tmp_path_factory):
    """ComfyUI (clone layout) with the pack and the prompt-recording pack; yields (comfy, record file)."""
    scratch = tmp_path_factory.mktemp("comfy-spy")
    record = scratch / "prompts_seen.jsonl"
    spy = scratch / "base" / "custom_nodes" / "prompt_spy"
    spy.mkdir(parents=True)
    (spy / "__init__.py").write_text(SPY_PACK.format(record=str(record)))
    proc = ComfyProcess("clone", scratch, comfyui_dir(), env={"OLLAMA_HOST": "http://127.0.0.1:9"}).start()
    yield proc, record
    proc.stop()


def seen(record) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_another_packs_on_prompt_handler_sees_a_jobs_prompt(comfy_with_spy, fixtures_dir):
    comfy, record = comfy_with_spy
    assert "prompt_spy" in comfy.log_text()  # the second pack loaded
    portrait = (fixtures_dir / "portrait_astronaut.png").read_bytes()
    speech = (fixtures_dir / "speech_front_left.wav").read_bytes()
    r = requests.post(comfy.url + "/myspinbot/jobs", data={"pipeline": "lite"}, timeout=60,
                      files={"portrait": ("me.png", portrait, "image/png"), "audio": ("speech.wav", speech, "audio/wav")})
    assert r.status_code == 202, r.text
    job = r.json()

    [entry] = [e for e in seen(record) if e["prompt_id"] == job["id"]]  # once, under the job's id
    assert entry["client_id"] == "myspinbot-jobs"
    assert "MySpinBotAnimatePortraitLite" in entry["class_types"] and "LoadImage" in entry["class_types"]

    # What the handler added to extra_data went into ComfyUI's queue with the prompt.
    queue = requests.get(comfy.url + "/queue", timeout=10).json()
    items = [item for item in queue["queue_running"] + queue["queue_pending"] if item[1] == job["id"]]
    history = requests.get(f"{comfy.url}/history/{job['id']}", timeout=10).json().get(job["id"])
    extra = items[0][3] if items else (history or {}).get("prompt", [None] * 4)[3]
    assert extra and extra.get("seen_by_spy") is True and extra.get("client_id") == "myspinbot-jobs"

    # Cancel (core's cancel_job where this ComfyUI has it): the job ends canceled, ComfyUI keeps going.
    r = requests.post(comfy.url + job["urls"]["cancel"], timeout=10)
    assert r.status_code == 200 and r.json()["status"] in ("canceling", "canceled"), r.text
    done = comfy.wait_job(job["id"], timeout=120)
    assert done["status"] == "canceled", done
    deadline = time.monotonic() + 30
    while requests.get(comfy.url + "/queue", timeout=10).json()["queue_running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert requests.get(comfy.url + "/myspinbot/health", timeout=10).status_code == 200
