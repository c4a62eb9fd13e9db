"""The pack loads in a real ComfyUI both ways, with its nodes and its workflow template."""

from __future__ import annotations

import pytest
import requests

NODES = {"MySpinBotSpeakEspeak", "MySpinBotAnimatePortraitLite", "MySpinBotScriptWriterOllama", "MySpinBotVoiceCloneF5",
         "MySpinBotInfiniteTalk", "MySpinBotUpscaleVideo", "MySpinBotSaveToMinIO", "MySpinBotLoadWav2Lip",
         "MySpinBotLipSyncWav2Lip", "MySpinBotLipSyncScore", "MySpinBotTrainCharacterLora", "MySpinBotLoadSadTalker",
         "MySpinBotSadTalker", "MySpinBotFineTuneF5Voice"}
LITE_NODES = {"MySpinBotSpeakEspeak", "MySpinBotAnimatePortraitLite"}
TEMPLATE = "myspinbot_lite_talking_head"


@pytest.fixture(params=["comfy_clone", "comfy_basedir"])
def comfy(request):
    return request.getfixturevalue(request.param)


def test_no_import_failure(comfy):
    log = comfy.log_text()
    assert "IMPORT FAILED" not in log, comfy.log_tail()
    assert "Cannot import" not in log, comfy.log_tail()
    assert "Error while calling comfy_entrypoint" not in log, comfy.log_tail()
    assert "myspinbot" in log.split("Import times for custom nodes:")[-1], "pack missing from ComfyUI's import times"


def test_object_info_lists_nodes(comfy):
    info = requests.get(comfy.url + "/object_info", timeout=30).json()
    assert NODES <= set(info), sorted(n for n in info if "MySpinBot" in n)
    animate = info["MySpinBotAnimatePortraitLite"]
    assert animate["display_name"] == "MySpinBot Animate Portrait (lite)"
    assert animate["output"] == ["VIDEO", "STRING"]
    assert info["MySpinBotSpeakEspeak"]["display_name"] == "MySpinBot Speak (espeak-ng)"


def test_workflow_template_listed_and_served(comfy):
    templates = requests.get(comfy.url + "/workflow_templates", timeout=10).json()
    assert TEMPLATE in templates.get("myspinbot", []), templates
    workflow = requests.get(f"{comfy.url}/api/workflow_templates/myspinbot/{TEMPLATE}.json", timeout=10).json()
    assert {n["type"] for n in workflow["nodes"]} >= LITE_NODES | {"LoadImage", "SaveVideo"}


def test_job_api_is_mounted_with_api_prefix(comfy):
    for prefix in ("/myspinbot", "/api/myspinbot"):
        r = requests.get(comfy.url + prefix + "/health", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok"
