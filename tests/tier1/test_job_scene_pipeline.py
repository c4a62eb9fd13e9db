"""The ``scene`` pipeline's checks, rewiring and models (no ComfyUI): which nodes a job's values
keep, how they are linked, and which manifest models the preflight asks for."""

from __future__ import annotations

import pytest

from myspinbot.models.manifest import load_manifest
from myspinbot.server.api_errors import ApiError
from myspinbot.server.pipelines import builtin_pipelines, node_by_title

ESPEAK = {"speech": "espeak"}


def _build(**raw):
    pipeline = builtin_pipelines()["scene"]
    values = pipeline.coerce(raw)
    built = pipeline.build(values, "myspinbot/test")
    prompt = built.prompt

    def node(title):
        return prompt[node_by_title(prompt, title)]

    titles = {n["_meta"]["title"] for n in prompt.values()}
    return pipeline, values, prompt, node, titles


def _source(prompt, link):
    return prompt[link[0]]["_meta"]["title"], link[1]


def test_prompt_job_runs_the_whole_chain_by_default():
    pipeline, values, prompt, node, titles = _build(prompt="A cooking show intro.", voice_sample="v.wav",
                                                    voice_transcript="Hello.", seed="7")
    assert node("Script writer")["inputs"]["mode"] == "ollama_scene" and node("Script writer")["inputs"]["seed"] == 7
    # the LLM's stage description is the text-to-image prompt; its narration is spoken in the cloned voice
    assert _source(prompt, node("Positive")["inputs"]["text"]) == ("Script writer", 1)
    assert _source(prompt, node("Voice clone")["inputs"]["text"]) == ("Script writer", 0)
    # no LoRA: the checkpoint feeds the sampler and the encoders, the LoRA loader is gone
    assert "LoRA" not in titles
    assert _source(prompt, node("Scene sampler")["inputs"]["model"]) == ("Checkpoint", 0)
    assert _source(prompt, node("Negative")["inputs"]["clip"]) == ("Checkpoint", 1)
    # SVD animates the rendered picture at the picture's size; the lip sync plays its frames ping-pong
    svd = node("SVD conditioning")["inputs"]
    assert _source(prompt, svd["init_image"]) == ("Scene decode", 0)
    assert (svd["width"], svd["height"], svd["video_frames"], svd["motion_bucket_id"]) == (768, 448, 25, 127)
    assert node("Motion sampler")["inputs"]["seed"] == 7 and node("Scene sampler")["inputs"]["seed"] == 7
    assert _source(prompt, node("Motion sampler")["inputs"]["model"]) == ("SVD guidance", 0)
    lipsync = node("Lip sync")["inputs"]
    assert _source(prompt, lipsync["images"]) == ("Motion decode", 0) and lipsync["loop"] == "ping_pong"
    assert _source(prompt, lipsync["audio"]) == ("Voice clone", 0) and lipsync["require_face"] is True
    # upscaled, and the storage node writes and uploads the output in SaveVideo's place
    assert _source(prompt, node("Save video")["inputs"]["video"]) == ("Upscale", 0)
    assert node("Save video")["class_type"] == "MySpinBotSaveToMinIO"
    assert "Fallback speech" not in titles and "Scene image" not in titles
    assert pipeline.models(values) == ["sd15_pruned_emaonly_fp16", "svd_img2vid_xt", "wav2lip_gan",
                                       "RealESRGAN_x4plus", "F5TTS_v1_Base", "vocos_mel_24khz"]


def test_script_and_scene_need_no_llm_and_motion_none_lip_syncs_the_still():
    pipeline, values, prompt, node, titles = _build(script="Hello there.", scene="a sunny kitchen, a cook",
                                                    motion="none", upscale="false", storage="false", **ESPEAK)
    assert node("Script writer")["inputs"]["mode"] == "verbatim"
    assert node("Positive")["inputs"]["text"] == "a sunny kitchen, a cook"
    lipsync = node("Lip sync")["inputs"]
    assert _source(prompt, lipsync["images"]) == ("Scene decode", 0) and lipsync["loop"] == "loop"
    assert _source(prompt, lipsync["audio"]) == ("Fallback speech", 0)
    assert not titles & {"SVD model", "SVD conditioning", "Motion sampler", "Upscale", "Store", "Voice clone"}
    assert node("Save video")["class_type"] == "SaveVideo"
    assert _source(prompt, node("Save video")["inputs"]["video"]) == ("Lip sync", 0)
    assert pipeline.models(values) == ["sd15_pruned_emaonly_fp16", "wav2lip_gan"]


def test_a_given_picture_skips_text_to_image():
    for field in ("portrait", "scene_image"):
        pipeline, values, prompt, node, titles = _build(script="Hi.", **{field: "me.png"}, **ESPEAK)
        assert node("Scene image")["inputs"]["image"] == "me.png"
        assert _source(prompt, node("SVD conditioning")["inputs"]["init_image"]) == ("Scene image", 0)
        assert not titles & {"Checkpoint", "Positive", "Scene sampler", "Scene decode"}
        assert "sd15_pruned_emaonly_fp16" not in pipeline.models(values)


def test_lora_feeds_model_and_clip_with_one_strength():
    pipeline, values, prompt, node, titles = _build(script="Hi.", scene="a park", lora="me.safetensors",
                                                    lora_strength="0.8", **ESPEAK)
    lora = node("LoRA")["inputs"]
    assert lora["lora_name"] == "me.safetensors" and lora["strength_model"] == lora["strength_clip"] == 0.8
    assert _source(prompt, lora["model"]) == ("Checkpoint", 0) and _source(prompt, lora["clip"]) == ("Checkpoint", 1)
    assert _source(prompt, node("Scene sampler")["inputs"]["model"]) == ("LoRA", 0)
    assert _source(prompt, node("Positive")["inputs"]["clip"]) == ("LoRA", 1)


def test_models_follow_the_files_named():
    pipeline = builtin_pipelines()["scene"]
    values = pipeline.coerce({"script": "Hi.", "scene": "x", "checkpoint": "my_sdxl.safetensors",
                              "svd_checkpoint": "svd.safetensors", "wav2lip_model": "wav2lip.pth",
                              "upscale_model": "RealESRGAN_x2plus.pth", **ESPEAK})
    assert pipeline.models(values) == ["svd_img2vid", "wav2lip", "RealESRGAN_x2plus"]  # my_sdxl is the user's own
    manifest = load_manifest()
    for name in ("sd15_pruned_emaonly_fp16", "svd_img2vid", "svd_img2vid_xt"):
        entry = manifest[name]
        assert entry.folder == "checkpoints" and entry.licence and entry.size_bytes
    assert "scene" in manifest["svd_img2vid_xt"].used_by and "scene" in manifest["sd15_pruned_emaonly_fp16"].used_by


@pytest.mark.parametrize("raw, code, fields", [
    ({"scene": "x", **ESPEAK}, "missing_script", ["prompt", "script"]),
    ({"prompt": "p", "script": "s", **ESPEAK}, "conflicting_inputs", ["prompt", "script"]),
    ({"script": "s", **ESPEAK}, "missing_scene", ["scene", "scene_image", "portrait"]),
    ({"script": "s", "portrait": "a.png", "scene_image": "b.png", **ESPEAK}, "conflicting_inputs",
     ["portrait", "scene_image"]),
])
def test_values_that_do_not_go_together(raw, code, fields):
    with pytest.raises(ApiError) as err:
        builtin_pipelines()["scene"].coerce(raw)
    assert err.value.status == 422 and err.value.code == code and err.value.details["fields"] == fields


def test_f5_speech_needs_the_voice_sample_and_motion_is_svd_or_none():
    with pytest.raises(ApiError) as err:
        builtin_pipelines()["scene"].coerce({"prompt": "p"})
    assert err.value.code == "missing_voice_sample"
    with pytest.raises(ApiError) as err:
        builtin_pipelines()["scene"].coerce({"prompt": "p", "motion": "chain", **ESPEAK})
    assert err.value.code == "invalid_parameter" and err.value.details["field"] == "motion"
