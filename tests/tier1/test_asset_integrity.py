"""An asset overwritten in ComfyUI's input folder (core's ``POST /upload/image`` can do that) is
never used by a job; uploading the same bytes again repairs it (tier 1, fake host)."""

from __future__ import annotations

from fake_host import lite_body, upload, upload_inputs  # noqa: F401


async def test_an_overwritten_asset_is_refused_and_a_reupload_repairs_it(client, host, service, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    path = host.input_dir / service.asset(portrait).path
    original = path.read_bytes()
    path.write_bytes(original[:-10] + b"overwrite!")  # what POST /upload/image?overwrite=true would do

    r = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))
    body = await r.json()
    assert r.status == 409 and body["error"]["code"] == "asset_modified"
    assert body["error"]["details"] == {"field": "portrait", "asset_id": portrait}
    assert host.prompts == {}  # nothing was queued

    again = await upload(client, original, "portrait.png")
    assert again.status == 200 and (await again.json())["asset_id"] == portrait
    assert path.read_bytes() == original
    assert (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))).status == 202


async def test_an_unchanged_asset_is_hashed_once(client, service, fixtures_dir, monkeypatch):
    import myspinbot.server.asset_integrity as integrity

    portrait, audio = await upload_inputs(client, fixtures_dir)
    opened = []
    real_open = open
    monkeypatch.setattr(integrity, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k), raising=False)
    for seed in range(3):
        assert (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio, seed=seed))).status == 202
    assert opened == []  # remembered from the upload
