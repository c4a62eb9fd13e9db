"""Assets (content-sniffed, content-addressed uploads) and JSON job submissions (tier 1, fake host)."""

from __future__ import annotations

import io

import aiohttp
import pytest
from PIL import Image

from fake_host import lite_body, sha256, upload, upload_inputs  # noqa: F401
from myspinbot.server.pipelines import node_by_title


def assets_left(host) -> list[str]:
    folder = host.input_dir / "myspinbot" / "assets"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def multipart(**fields: str) -> aiohttp.FormData:
    return aiohttp.FormData(fields, default_to_multipart=True)


def png(size=(32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 90)).save(buf, format="PNG")
    return buf.getvalue()


async def test_image_upload_is_stored_by_sha256_and_deduplicated(client, host, service, fixtures_dir):
    payload = (fixtures_dir / "portrait_astronaut.png").read_bytes()
    r = await upload(client, payload, "whatever.bin", "application/octet-stream")
    assert r.status == 201, await r.text()
    asset = await r.json()
    digest = sha256(payload)
    assert asset == {"asset_id": digest, "sha256": digest, "content_type": "image/png", "size_bytes": len(payload),
                     "kind": "image"}
    assert r.headers["Location"] == f"/myspinbot/assets/{digest}"
    assert (host.input_dir / "myspinbot" / "assets" / f"{digest}.png").read_bytes() == payload
    again = await upload(client, payload, "other-name.jpg", "image/jpeg")
    assert again.status == 200 and await again.json() == asset
    assert assets_left(host) == [f"{digest}.png"]
    got = await client.get(f"/myspinbot/assets/{digest}")
    assert got.status == 200 and await got.json() == asset


async def test_audio_upload_is_sniffed_from_content_not_name(client, host, fixtures_dir):
    payload = (fixtures_dir / "speech_front_left.wav").read_bytes()
    r = await upload(client, payload, "portrait.png", "image/png")  # the name and type lie
    assert r.status == 201, await r.text()
    asset = await r.json()
    assert asset["content_type"] == "audio/wav" and asset["kind"] == "audio"
    assert assets_left(host) == [f"{asset['asset_id']}.wav"]


@pytest.mark.parametrize("payload, filename", [
    (b"just a text file, honestly\n" * 20, "portrait.png"),
    (b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10, "portrait.png"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40, "speech.wav"),
    (png((8, 8)), "tiny.png"),
])
async def test_unreadable_or_mislabelled_uploads_are_refused_and_leave_nothing(client, host, service, payload, filename):
    r = await upload(client, payload, filename, "image/png")
    assert r.status == 400, await r.text()
    err = (await r.json())["error"]
    assert err["code"] == "invalid_asset" and err["details"]["field"] == "file"
    assert assets_left(host) == []
    assert service.asset(sha256(payload)) is None


async def test_upload_size_cap_is_413_and_leaves_nothing(client, host, service):
    service.max_upload_bytes = 1000
    r = await upload(client, png((200, 200)) + b"\x00" * 2000, "big.png")
    assert r.status == 413 and (await r.json())["error"]["code"] == "file_too_large"
    assert assets_left(host) == []


async def test_upload_needs_exactly_one_file_field(client, host):
    data = aiohttp.FormData()
    data.add_field("note", "hello")
    data.add_field("file", io.BytesIO(png()), filename="a.png")
    r = await client.post("/myspinbot/assets", data=data)
    assert r.status == 422 and (await r.json())["error"]["details"]["field"] == "note"
    data = aiohttp.FormData()
    data.add_field("image", io.BytesIO(png()), filename="a.png")
    r = await client.post("/myspinbot/assets", data=data)
    assert r.status == 422 and (await r.json())["error"]["details"]["field"] == "image"
    r = await client.post("/myspinbot/assets", json={"file": "x"})
    assert r.status == 415
    assert assets_left(host) == []


@pytest.mark.parametrize("asset_id", ["A" * 64, "0" * 63, "0" * 64])
async def test_unknown_or_malformed_asset_ids_are_404(client, asset_id):
    r = await client.get(f"/myspinbot/assets/{asset_id}")
    assert r.status == 404 and (await r.json())["error"]["code"] == "asset_not_found"


async def test_an_asset_id_that_could_lead_elsewhere_is_refused_before_the_handler(client):
    r = await client.get("/myspinbot/assets/..%2F..%2Fjobs.sqlite3")
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_path_parameter"


async def test_json_submission_with_assets_binds_the_stored_files(client, host, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio, fps=30, seed=7))
    assert r.status == 202, await r.text()
    job = await r.json()
    assert job["status"] == "queued" and job["queue_position"] == 1
    assert job["urls"] == {"self": f"/myspinbot/jobs/{job['id']}", "events": f"/myspinbot/jobs/{job['id']}/events",
                           "cancel": f"/myspinbot/jobs/{job['id']}/cancel"}
    assert job["progress"] == {"value": 0.0, "stage": None, "message": "waiting in ComfyUI's queue", "stage_index": None,
                               "stages": 4, "step": None, "steps": None, "eta_seconds": None}
    prompt = host.prompts[job["id"]]
    assert prompt[node_by_title(prompt, "Portrait")]["inputs"]["image"] == f"myspinbot/assets/{portrait}.png"
    assert prompt[node_by_title(prompt, "Speech recording")]["inputs"]["audio"] == f"myspinbot/assets/{audio}.wav"
    animate = prompt[node_by_title(prompt, "Animate portrait")]["inputs"]
    assert animate["fps"] == 30.0 and animate["seed"] == 7
    assert not (host.input_dir / "myspinbot" / job["id"]).exists()  # nothing staged: the assets are shared


async def test_json_submission_with_a_script(client, host, fixtures_dir):
    portrait, _ = await upload_inputs(client, fixtures_dir)
    body = {"pipeline": "lite", "inputs": {"portrait": {"asset_id": portrait}, "script": "Hello there."},
            "options": {"voice": "de"}}
    r = await client.post("/myspinbot/jobs", json=body)
    assert r.status == 202, await r.text()
    prompt = host.prompts[(await r.json())["id"]]
    speak = prompt[node_by_title(prompt, "Script speech")]["inputs"]
    assert speak["text"] == "Hello there." and speak["voice"] == "de"


async def test_multipart_text_field_for_a_file_parameter_is_an_asset_id(client, host, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", data=multipart(pipeline="lite", portrait=portrait, audio=audio))
    assert r.status == 202, await r.text()
    prompt = host.prompts[(await r.json())["id"]]
    assert prompt[node_by_title(prompt, "Portrait")]["inputs"]["image"] == f"myspinbot/assets/{portrait}.png"
    r = await client.post("/myspinbot/jobs", data=multipart(pipeline="lite", portrait="../../user/jobs.sqlite3", audio=audio))
    assert r.status == 422 and (await r.json())["error"] == {
        "code": "invalid_asset_id", "message": "parameter 'portrait': an asset id is 64 lowercase hex digits (a sha256)",
        "details": {"field": "portrait"}}


BAD_JSON = [
    # (body transform, status, code, field)
    (lambda p, a: {"pipeline": "lite", "inputs": {"audio": {"asset_id": a}}}, 422, "missing_portrait", "portrait"),
    (lambda p, a: {"inputs": {"portrait": {"asset_id": p}}}, 422, "missing_pipeline", "pipeline"),
    (lambda p, a: {"pipeline": "nope", "inputs": {}}, 422, "unknown_pipeline", "pipeline"),
    (lambda p, a: {"pipeline": 5}, 422, "invalid_parameter", "pipeline"),
    (lambda p, a: lite_body(p, a, colour="blue"), 422, "unknown_parameter", "colour"),
    (lambda p, a: lite_body(p, a, fps="fast"), 422, "invalid_parameter", "fps"),
    (lambda p, a: lite_body(p, a, fps=True), 422, "invalid_parameter", "fps"),
    (lambda p, a: lite_body(p, a, fps=1000), 422, "invalid_parameter", "fps"),
    (lambda p, a: {"pipeline": "lite", "inputs": {"portrait": f"myspinbot/assets/{p}.png", "audio": {"asset_id": a}}},
     422, "invalid_parameter", "portrait"),
    (lambda p, a: {"pipeline": "lite", "inputs": {"portrait": {"asset_id": "../../../etc/passwd"}, "audio": {"asset_id": a}}},
     422, "invalid_asset_id", "portrait"),
    (lambda p, a: {"pipeline": "lite", "inputs": {"portrait": {"asset_id": p, "path": "/etc"}, "audio": {"asset_id": a}}},
     422, "invalid_parameter", "portrait"),
    (lambda p, a: lite_body("f" * 64, a), 422, "asset_not_found", "portrait"),
    (lambda p, a: lite_body(a, a), 422, "asset_kind_mismatch", "portrait"),
    (lambda p, a: {**lite_body(p, a), "priority": 1}, 422, "unknown_field", "priority"),
    (lambda p, a: {**lite_body(p, a), "options": {"portrait": {"asset_id": p}}}, 422, "conflicting_inputs", "portrait"),
    (lambda p, a: {"pipeline": "lite", "inputs": [p]}, 422, "invalid_parameter", "inputs"),
    (lambda p, a: [p, a], 400, "malformed_body", None),
]


@pytest.mark.parametrize("make, status, code, field", BAD_JSON)
async def test_bad_json_submissions_name_the_field_and_create_nothing(client, host, service, fixtures_dir,
                                                                      make, status, code, field):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json=make(portrait, audio))
    assert r.status == status, await r.text()
    err = (await r.json())["error"]
    assert err["code"] == code and err["message"]
    if field is not None:
        assert err["details"]["field"] == field
    assert host.prompts == {} and service.list_jobs()[0] == []


async def test_malformed_json_is_400(client, host):
    for raw in (b"{not json", b'{"pipeline": NaN}', b"\xff\xfe"):
        r = await client.post("/myspinbot/jobs", data=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400 and (await r.json())["error"]["code"] == "malformed_body"
    assert host.prompts == {}
