"""GET /myspinbot/pipelines: each pipeline's parameters as JSON Schema, its stages and models."""

from __future__ import annotations

import jsonschema

from fake_host import client, clock, host, service  # noqa: F401  (fixtures)


async def test_pipelines_list_parameters_defaults_and_models(client):
    r = await client.get("/myspinbot/pipelines")
    assert r.status == 200
    by_name = {p["name"]: p for p in (await r.json())["pipelines"]}
    assert {"lite", "f5", "infinitetalk"} <= set(by_name)
    lite, f5 = by_name["lite"], by_name["f5"]
    assert lite["models"] == [] and lite["stages"][-1] == "store"
    assert lite["parameters"]["properties"]["fps"]["default"] == 25.0
    assert f5["models"] == ["F5TTS_v1_Base", "vocos_mel_24khz"]
    assert f5["parameters"]["properties"]["speech"]["enum"] == ["f5", "espeak"]
    for pipeline in by_name.values():
        jsonschema.Draft202012Validator.check_schema(pipeline["parameters"])
