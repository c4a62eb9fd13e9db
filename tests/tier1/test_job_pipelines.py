"""GET /myspinbot/pipelines: each pipeline's parameters as JSON Schema, its stages and models."""

from __future__ import annotations

import jsonschema
import pytest



async def test_pipelines_list_parameters_defaults_and_models(client):
    r = await client.get("/myspinbot/pipelines")
    assert r.status == 200
    by_name = {p["name"]: p for p in (await r.json())["pipelines"]}
    assert {"lite", "f5", "infinitetalk", "scene", "sadtalker"} <= set(by_name)
    lite, f5 = by_name["lite"], by_name["f5"]
    assert lite["models"] == [] and lite["stages"][-1] == "store"
    assert lite["parameters"]["properties"]["fps"]["default"] == 25.0
    assert f5["models"] == ["F5TTS_v1_Base", "vocos_mel_24khz"]
    assert f5["parameters"]["properties"]["speech"]["enum"] == ["f5", "espeak"]
    for pipeline in by_name.values():
        jsonschema.Draft202012Validator.check_schema(pipeline["parameters"])


def _infinitetalk_build(**raw):
    from myspinbot.server.pipelines import builtin_pipelines, node_by_title

    pipeline = builtin_pipelines()["infinitetalk"]
    values = pipeline.coerce({"portrait": "p.png", "speech_recording": "s.wav", **raw})
    built = pipeline.build(values, "myspinbot/test")
    return pipeline, values, built.prompt, lambda title: built.prompt[node_by_title(built.prompt, title)]


def test_infinitetalk_upscales_x2_with_realesrgan_x4plus_by_default():
    pipeline, values, prompt, node = _infinitetalk_build()
    assert node("Upscale model")["inputs"]["model_name"] == "RealESRGAN_x4plus.safetensors"
    assert node("Upscale")["inputs"]["output_scale"] == 2.0
    assert "face_restore_model" not in node("Upscale")["inputs"]
    assert not any(n["_meta"]["title"] == "Face restore model" for n in prompt.values())  # pruned
    needed = pipeline.models(values)
    assert "RealESRGAN_x4plus" in needed and "GFPGANv1.4" not in needed


def test_infinitetalk_face_restore_wires_the_gfpgan_loader():
    pipeline, values, prompt, node = _infinitetalk_build(face_restore="true", face_restore_strength="0.6",
                                                         upscale_factor="1")
    upscale = node("Upscale")["inputs"]
    assert prompt[upscale["face_restore_model"][0]]["inputs"]["model_name"] == "GFPGANv1.4.pth"
    assert upscale["face_restore_strength"] == 0.6 and upscale["output_scale"] == 1.0
    assert "GFPGANv1.4" in pipeline.models(values)
    _, values, _, _ = _infinitetalk_build(face_restore="true", face_restore_model="my_face.pth")
    assert "GFPGANv1.4" not in pipeline.models(values)  # a file of the user's own is not the manifest's


def test_infinitetalk_face_restore_without_upscale_is_a_conflict():
    from myspinbot.server.api_errors import ApiError

    with pytest.raises(ApiError) as err:
        _infinitetalk_build(face_restore="true", upscale="false")
    assert err.value.status == 422 and err.value.code == "conflicting_inputs"
    pipeline, values, prompt, _ = _infinitetalk_build(upscale="false")
    assert not any(n["class_type"] == "UpscaleModelLoader" for n in prompt.values())
    assert "RealESRGAN_x4plus" not in pipeline.models(values)
