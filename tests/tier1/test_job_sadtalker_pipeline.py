"""The ``sadtalker`` pipeline's checks, rewiring and models (no ComfyUI): which nodes a job's
values keep, how they are linked, and which manifest models the preflight asks for."""

from __future__ import annotations

import pytest

from myspinbot.models.manifest import load_manifest, models_used_by
from myspinbot.server.api_errors import ApiError
from myspinbot.server.pipelines import builtin_pipelines, node_by_title

PORTRAIT = {"portrait": "me.png"}
ESPEAK = {"speech": "espeak", **PORTRAIT}


def _build(**raw):
    pipeline = builtin_pipelines()["sadtalker"]
    values = pipeline.coerce(raw)
    prompt = pipeline.build(values, "myspinbot/test").prompt

    def node(title):
        return prompt[node_by_title(prompt, title)]

    titles = {n["_meta"]["title"] for n in prompt.values()}
    return pipeline, values, prompt, node, titles


def _source(prompt, link):
    return prompt[link[0]]["_meta"]["title"], link[1]


def test_prompt_job_clones_the_voice_animates_upscales_and_stores_by_default():
    pipeline, values, prompt, node, titles = _build(prompt="Introduce the weather.", voice_sample="v.wav",
                                                    voice_transcript="Hello.", seed="7", **PORTRAIT)
    writer = node("Script writer")["inputs"]
    assert writer["mode"] == "ollama" and writer["prompt"] == "Introduce the weather." and writer["seed"] == 7
    assert node("Voice clone")["inputs"]["seed"] == 7 and node("Voice clone")["inputs"]["ref_text"] == "Hello."
    talk = node("SadTalker")["inputs"]
    assert _source(prompt, talk["audio"]) == ("Voice clone", 0) and _source(prompt, talk["image"]) == ("Portrait", 0)
    assert (talk["size"], talk["preprocess"], talk["still"], talk["pose_style"], talk["expression_scale"],
            talk["seed"], talk["max_frames"]) == ("256", "crop", False, 0, 1.0, 7, 0)
    loader = node("SadTalker model")["inputs"]
    assert loader == {"checkpoint": "SadTalker_V0.0.2_256.safetensors", "mapping": "mapping_00229-model.pth.tar"}
    assert node("Portrait")["inputs"]["image"] == "me.png"
    # upscaled x2 (no face restoration), and the storage node writes and uploads in SaveVideo's place
    upscale = node("Upscale")["inputs"]
    assert _source(prompt, upscale["video"]) == ("SadTalker", 0) and upscale["output_scale"] == 2.0
    assert "face_restore_model" not in upscale and "Face restore model" not in titles
    save = node("Save video")
    assert save["class_type"] == "MySpinBotSaveToMinIO" and _source(prompt, save["inputs"]["video"]) == ("Upscale", 0)
    assert save["inputs"]["pipeline"] == "sadtalker" and save["inputs"]["filename_prefix"] == "myspinbot/test"
    assert not titles & {"Fallback speech", "Speech recording", "Store"}
    assert pipeline.models(values) == ["sadtalker_256", "sadtalker_mapping", "RealESRGAN_x4plus",
                                       "F5TTS_v1_Base", "vocos_mel_24khz"]


def test_script_with_espeak_no_upscale_no_storage():
    pipeline, values, prompt, node, titles = _build(script="Hi.", still="true", pose_style="12",
                                                    expression_scale="1.5", max_frames="3", upscale="false",
                                                    storage="false", voice="en-us", **ESPEAK)
    assert node("Script writer")["inputs"]["mode"] == "verbatim" and node("Script writer")["inputs"]["prompt"] == "Hi."
    assert node("Fallback speech")["inputs"]["voice"] == "en-us"
    talk = node("SadTalker")["inputs"]
    assert _source(prompt, talk["audio"]) == ("Fallback speech", 0)
    assert (talk["still"], talk["pose_style"], talk["expression_scale"], talk["max_frames"]) == (True, 12, 1.5, 3)
    save = node("Save video")
    assert save["class_type"] == "SaveVideo" and _source(prompt, save["inputs"]["video"]) == ("SadTalker", 0)
    assert not titles & {"Voice clone", "Voice sample", "Upscale", "Upscale model", "Store", "Speech recording"}
    assert pipeline.models(values) == ["sadtalker_256", "sadtalker_mapping"]


def test_speech_recording_is_animated_as_is():
    pipeline, values, prompt, node, titles = _build(speech_recording="s.wav", **PORTRAIT)
    assert _source(prompt, node("SadTalker")["inputs"]["audio"]) == ("Speech recording", 0)
    assert node("Speech recording")["inputs"]["audio"] == "s.wav"
    assert not titles & {"Script writer", "Voice clone", "Fallback speech"}
    assert "F5TTS_v1_Base" not in pipeline.models(values)


def test_size_and_preprocess_choose_the_files():
    pipeline, values, prompt, node, _ = _build(size="512", preprocess="full", **ESPEAK, script="Hi.")
    assert node("SadTalker")["inputs"]["size"] == "512" and node("SadTalker")["inputs"]["preprocess"] == "full"
    assert node("SadTalker model")["inputs"] == {"checkpoint": "SadTalker_V0.0.2_512.safetensors",
                                                 "mapping": "mapping_00109-model.pth.tar"}
    assert pipeline.models(values)[:2] == ["sadtalker_512", "sadtalker_mapping"]
    pipeline, values, prompt, node, _ = _build(checkpoint="my_sadtalker.safetensors", mapping="my_map.pth",
                                               upscale="false", script="Hi.", **ESPEAK)
    assert node("SadTalker model")["inputs"] == {"checkpoint": "my_sadtalker.safetensors", "mapping": "my_map.pth"}
    assert pipeline.models(values) == []  # files of the user's own are not the manifest's


def test_face_restore_wires_the_gfpgan_loader():
    pipeline, values, prompt, node, titles = _build(face_restore="true", face_restore_strength="0.6",
                                                    upscale_factor="1", script="Hi.", **ESPEAK)
    upscale = node("Upscale")["inputs"]
    assert prompt[upscale["face_restore_model"][0]]["inputs"]["model_name"] == "GFPGANv1.4.pth"
    assert upscale["face_restore_strength"] == 0.6 and upscale["output_scale"] == 1.0
    assert pipeline.models(values) == ["sadtalker_256", "sadtalker_mapping", "RealESRGAN_x4plus", "GFPGANv1.4"]


@pytest.mark.parametrize("raw, code, field", [
    ({"script": "s", "speech": "espeak"}, "missing_portrait", "portrait"),
    ({**ESPEAK}, "missing_script", None),
    ({"prompt": "p", "script": "s", **ESPEAK}, "conflicting_inputs", None),
    ({"script": "s", "speech_recording": "s.wav", **ESPEAK}, "conflicting_inputs", None),
    ({"script": "s", **PORTRAIT}, "missing_voice_sample", "voice_sample"),
    ({"script": "s", "size": "384", **ESPEAK}, "invalid_parameter", "size"),
    ({"script": "s", "pose_style": "46", **ESPEAK}, "invalid_parameter", "pose_style"),
    ({"script": "s", "preprocess": "extcrop", **ESPEAK}, "invalid_parameter", "preprocess"),
    ({"script": "s", "face_restore": "true", "upscale": "false", **ESPEAK}, "conflicting_inputs", None),
])
def test_values_that_do_not_go_together(raw, code, field):
    with pytest.raises(ApiError) as err:
        builtin_pipelines()["sadtalker"].coerce(raw)
    assert err.value.status == 422 and err.value.code == code
    if field is not None:
        assert err.value.details["field"] == field


def test_manifest_lists_every_model_the_pipeline_can_ask_for():
    manifest = load_manifest()
    used = set(models_used_by(manifest, "sadtalker"))
    assert {"sadtalker_256", "sadtalker_512", "sadtalker_mapping", "RealESRGAN_x4plus", "GFPGANv1.4"} <= used
    pipeline = builtin_pipelines()["sadtalker"]
    for raw in ({}, {"size": "512", "preprocess": "full", "face_restore": "true"}):
        values = pipeline.coerce({"script": "Hi.", **ESPEAK, **raw})
        assert set(pipeline.models(values)) <= set(manifest)
