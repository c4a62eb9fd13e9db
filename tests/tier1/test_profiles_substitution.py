"""``pipelines.common.apply_profile``: what a profile stands in for, per pipeline (``profile_uses``)."""

from __future__ import annotations

import pytest

from myspinbot.server.api_errors import ApiError
from myspinbot.server.pipelines import builtin_pipelines, node_by_title
from myspinbot.server.pipelines.common import ProfileInputs, apply_profile

PROFILE = ProfileInputs("p1", "myspinbot/profiles/p1/voice_ab.wav", "Front left.", "myspinbot/profiles/p1/reference.png",
                        "myspinbot/profile_p1.safetensors", "zxq person")


@pytest.mark.parametrize("name", ["f5", "infinitetalk", "sadtalker"])
def test_talking_head_pipelines_take_the_reference_photo_and_the_voice(name):
    pipeline = builtin_pipelines()[name]
    values = pipeline.coerce(apply_profile(pipeline, {"profile": "p1", "script": "Hello."}, PROFILE))
    assert values["portrait"] == PROFILE.reference_photo
    assert values["voice_sample"] == PROFILE.voice_sample and values["voice_transcript"] == "Front left."
    assert "lora" not in values


def test_scene_takes_the_lora_and_puts_the_trigger_word_before_the_picture_description():
    pipeline = builtin_pipelines()["scene"]
    raw = apply_profile(pipeline, {"profile": "p1", "script": "Hello.", "scene": "a kitchen", "motion": "none"}, PROFILE)
    values = pipeline.coerce(raw)
    assert values["lora"] == PROFILE.lora and "portrait" not in values
    prompt = pipeline.build(values, "myspinbot/j/output").prompt
    text = prompt[node_by_title(prompt, "Positive")]["inputs"]["text"]
    joined = prompt[text[0]]
    assert joined["class_type"] == "StringConcatenate"
    assert joined["inputs"] == {"string_a": "zxq person", "string_b": "a kitchen", "delimiter": ", "}
    assert prompt[node_by_title(prompt, "LoRA")]["inputs"]["lora_name"] == PROFILE.lora
    # With the LLM's stage description the trigger word is joined to that link.
    values = pipeline.coerce(apply_profile(pipeline, {"profile": "p1", "prompt": "cooking", "motion": "none"}, PROFILE))
    prompt = pipeline.build(values, "myspinbot/j/output").prompt
    joined = prompt[prompt[node_by_title(prompt, "Positive")]["inputs"]["text"][0]]
    assert joined["inputs"]["string_b"] == [node_by_title(prompt, "Script writer"), 1]


def test_a_profile_without_voice_leaves_the_voice_to_the_client_and_conflicts_are_refused():
    pipeline = builtin_pipelines()["f5"]
    silent = ProfileInputs("p1", None, None, PROFILE.reference_photo, PROFILE.lora, "zxq person")
    values = apply_profile(pipeline, {"profile": "p1", "script": "Hi.", "speech": "espeak"}, silent)
    assert values["portrait"] == PROFILE.reference_photo and "voice_sample" not in values
    with pytest.raises(ApiError) as err:
        apply_profile(pipeline, {"profile": "p1", "portrait": "x.png"}, PROFILE)
    assert err.value.code == "conflicting_inputs" and err.value.details == {"field": "portrait"}
    assert builtin_pipelines()["lite"].profile_uses == ()
