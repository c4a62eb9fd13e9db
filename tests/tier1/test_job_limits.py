"""Issue #9 item 3: small uploads that expand into gigabytes are refused before the expensive step,
each with a 4xx envelope whose ``details.limit`` names the ``MYSPINBOT_*`` setting (tier 1)."""

from __future__ import annotations

import asyncio
import io
import threading

import aiohttp
import pytest
from aiohttp import web
from PIL import Image, ImageFile

from attack_inputs import StreamedForm, huge_png, long_script, silent_flac
from fake_host import Clock, FakeHost, compose_app, file_form, lite_body, place_models, upload
from myspinbot.server.jobs import assets as assets_module
from myspinbot.server.pipelines import builtin_pipelines
from myspinbot.server.settings import Settings

MIB = 1 << 20


@pytest.fixture
def make_client(aiohttp_client, tmp_path):
    """``await make_client(**settings)``: (client, host) of a job API with those settings."""

    async def make(**overrides):
        host = FakeHost(tmp_path / f"root{len(list(tmp_path.iterdir()))}")
        api = compose_app(host, Settings(**overrides), clock=Clock())
        return await aiohttp_client(api.app), host

    return make


def lite_form(portrait: bytes, audio: bytes | None = None, audio_name: str = "speech.flac", **fields: str):
    data = aiohttp.FormData()
    data.add_field("pipeline", "lite")
    data.add_field("portrait", io.BytesIO(portrait), filename="me.png", content_type="image/png")
    if audio is not None:
        data.add_field("audio", io.BytesIO(audio), filename=audio_name, content_type="audio/flac")
    for key, value in fields.items():
        data.add_field(key, value)
    return data


async def refused(response, status: int, code: str, limit: str | None) -> dict:
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == code and error["message"], error
    if limit is not None:
        assert error["details"]["limit"] == limit, error
    return error


def nothing_staged(host) -> bool:
    staged = host.input_dir / "myspinbot"
    return not staged.exists() or not any(p for p in staged.rglob("*") if p.is_file() and "assets" not in p.parts)


@pytest.fixture
def decode_spy(monkeypatch):
    """Records every full image decode (``load``) and ``verify``: the header check must come first."""
    calls = []
    load, verify = ImageFile.ImageFile.load, ImageFile.ImageFile.verify
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: calls.append(("load", self.size)) or load(self))
    monkeypatch.setattr(ImageFile.ImageFile, "verify", lambda self: calls.append(("verify", self.size)) or verify(self))
    return calls


# --- images: from the header ------------------------------------------------------------------

async def test_13000_square_png_is_refused_from_its_header(make_client, decode_spy):
    client, host = await make_client()
    payload = huge_png()
    assert len(payload) < 400_000
    r = await client.post("/myspinbot/jobs", data=lite_form(payload, script="Hello."))
    error = await refused(r, 413, "image_too_large", "MYSPINBOT_MAX_IMAGE_SIDE")
    assert error["details"]["actual"] == 13000 and error["details"]["max"] == 8192
    assert not [c for c in decode_spy if c[1] == (13000, 13000)], "the image was decoded before the check"
    assert host.prompts == {} and nothing_staged(host)
    r = await upload(client, payload, "big.png")
    await refused(r, 413, "image_too_large", "MYSPINBOT_MAX_IMAGE_SIDE")
    assert not [c for c in decode_spy if c[1] == (13000, 13000)]


async def test_pixel_limit_counts_width_height_and_frames(make_client, decode_spy):
    client, _ = await make_client(max_image_side=20000)
    r = await client.post("/myspinbot/jobs", data=lite_form(huge_png(), script="Hello."))
    error = await refused(r, 413, "image_too_large", "MYSPINBOT_MAX_IMAGE_PIXELS")
    assert error["details"]["actual"] == 13000 * 13000 and error["details"]["max"] == 40_000_000
    assert not [c for c in decode_spy if c[1] == (13000, 13000)]
    # An animated PNG: ComfyUI's image loader decodes every frame, so frames count too.
    client, _ = await make_client(max_image_pixels=100_000)
    frames = [Image.new("RGB", (100, 100), (i, 0, 0)) for i in range(20)]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:])
    error = await refused(await upload(client, buf.getvalue(), "anim.png"), 413, "image_too_large", "MYSPINBOT_MAX_IMAGE_PIXELS")
    assert error["details"]["actual"] == 100 * 100 * 20
    buf = io.BytesIO()
    frames[0].save(buf, "PNG")
    assert (await upload(client, buf.getvalue(), "still.png")).status == 201


# --- audio: counted while decoding --------------------------------------------------------------

@pytest.mark.parametrize("claim_s", [None, 1.0], ids=["honest-header", "lying-header"])
async def test_an_hour_of_flac_is_refused_while_decoding(make_client, fixtures_dir, claim_s):
    client, host = await make_client()
    portrait = (fixtures_dir / "portrait_astronaut.png").read_bytes()
    r = await client.post("/myspinbot/jobs", data=lite_form(portrait, silent_flac(3600.0, claim_s=claim_s)))
    error = await refused(r, 413, "audio_too_long", "MYSPINBOT_MAX_AUDIO_S")
    assert error["details"]["max"] == 300.0 and error["details"]["field"] == "audio"
    assert 300 < error["details"]["actual_at_least"] < 320, "decoding went on past the limit"
    assert host.prompts == {} and nothing_staged(host)
    # An asset may be used by any pipeline: it is checked against the larger (GPU) limit.
    r = await upload(client, silent_flac(3600.0, claim_s=claim_s), "hour.flac")
    await refused(r, 413, "audio_too_long", "MYSPINBOT_MAX_AUDIO_S_GPU")


async def test_gpu_pipelines_accept_longer_speech(make_client, fixtures_dir):
    client, host = await make_client(max_audio_s=60, max_audio_s_gpu=200)
    place_models(host, builtin_pipelines()["infinitetalk"].models({}))  # present: the preflight passes
    portrait = (fixtures_dir / "portrait_astronaut.png").read_bytes()
    ten_minutes, two_minutes = silent_flac(600.0), silent_flac(120.0)
    r = await client.post("/myspinbot/jobs", data=lite_form(portrait, two_minutes))
    await refused(r, 413, "audio_too_long", "MYSPINBOT_MAX_AUDIO_S")
    data = aiohttp.FormData()
    data.add_field("pipeline", "infinitetalk")
    data.add_field("portrait", io.BytesIO(portrait), filename="me.png", content_type="image/png")
    data.add_field("speech_recording", io.BytesIO(two_minutes), filename="talk.flac", content_type="audio/flac")
    r = await client.post("/myspinbot/jobs", data=data)
    assert r.status == 202, await r.text()
    # Assets: uploaded within the larger limit, checked against the pipeline's when used.
    await refused(await upload(client, ten_minutes, "long.flac"), 413, "audio_too_long", "MYSPINBOT_MAX_AUDIO_S_GPU")
    r = await upload(client, two_minutes, "two.flac")
    assert r.status == 201, await r.text()
    audio_id = (await r.json())["asset_id"]
    r = await upload(client, portrait, "me.png")
    portrait_id = (await r.json())["asset_id"]
    r = await client.post("/myspinbot/jobs", json=lite_body(portrait_id, audio_id))
    await refused(r, 413, "audio_too_long", "MYSPINBOT_MAX_AUDIO_S")
    form = aiohttp.FormData({"pipeline": "lite", "portrait": portrait_id, "audio": audio_id}, default_to_multipart=True)
    r = await client.post("/myspinbot/jobs", data=form)
    await refused(r, 413, "audio_too_long", "MYSPINBOT_MAX_AUDIO_S")
    assert len(host.prompts) == 1


async def test_a_long_wav_is_refused(make_client, fixtures_dir):
    client, host = await make_client(max_audio_s=1.0)
    r = await client.post("/myspinbot/jobs", data=lite_form((fixtures_dir / "portrait_astronaut.png").read_bytes(),
                                                             (fixtures_dir / "speech_front_left.wav").read_bytes(),
                                                             audio_name="speech.wav"))
    error = await refused(r, 413, "audio_too_long", "MYSPINBOT_MAX_AUDIO_S")
    assert error["details"]["max"] == 1.0 and host.prompts == {}


# --- text ------------------------------------------------------------------------------------

async def test_a_100_kb_script_is_refused(make_client, fixtures_dir):
    client, host = await make_client()
    portrait = (fixtures_dir / "portrait_astronaut.png").read_bytes()
    r = await client.post("/myspinbot/jobs", data=lite_form(portrait, script=long_script()))
    error = await refused(r, 413, "script_too_long", "MYSPINBOT_MAX_SCRIPT_CHARS")
    assert error["details"] == {"limit": "MYSPINBOT_MAX_SCRIPT_CHARS", "max": 10_000, "actual": 100_000, "field": "script"}
    portrait_id = (await (await upload(client, portrait, "me.png")).json())["asset_id"]
    for field in ("script", "prompt", "voice_transcript"):
        body = {"pipeline": "f5", "inputs": {"portrait": {"asset_id": portrait_id}, field: long_script()}}
        r = await client.post("/myspinbot/jobs", json=body)
        await refused(r, 413, "script_too_long", "MYSPINBOT_MAX_SCRIPT_CHARS")
    body = lite_body(portrait_id, script="x" * 10_000)
    assert (await client.post("/myspinbot/jobs", json=body)).status == 202
    assert len(host.prompts) == 1


# --- the form: stops reading at the first limit ----------------------------------------------

async def post_stalled(client, form: StreamedForm, path: str = "/myspinbot/jobs"):
    """POST a body that stalls after ``form.stall_after`` parts: the answer must come anyway."""
    try:
        return await asyncio.wait_for(client.post(path, data=form.body(), headers={"Content-Type": form.content_type}),
                                      timeout=20)
    finally:
        form.release()


async def test_600_text_fields_of_1_mb_are_refused_at_the_text_limit(make_client):
    client, _ = await make_client()
    megabyte = b"x" * MIB
    form = StreamedForm([("pipeline", b"lite", None)] + [(f"f{i}", megabyte, None) for i in range(600)], stall_after=3)
    error = await refused(await post_stalled(client, form), 413, "text_too_large", "MYSPINBOT_MAX_TEXT_BYTES")
    assert error["details"]["max"] == 256 * 1024 and form.sent_parts <= 3


async def test_too_many_parts_are_refused_at_the_part_limit(make_client):
    client, _ = await make_client(max_form_parts=10)
    # (aiohttp's part reader looks up to two 64 KiB chunks ahead for the boundary: the 12th part pads for it)
    form = StreamedForm([(f"f{i}", b"1", None) for i in range(11)] + [("pad", b"x" * 200_000, None)]
                        + [(f"g{i}", b"1", None) for i in range(600)], stall_after=12)
    error = await refused(await post_stalled(client, form), 413, "too_many_parts", "MYSPINBOT_MAX_FORM_PARTS")
    assert error["details"]["max"] == 10


@pytest.mark.parametrize("parts", [
    [("pipeline", b"lite", None), ("bogus", b"\0" * MIB, "x.bin")],         # no pipeline takes it
    [("bogus", b"\0" * MIB, "x.bin")],                                       # nor any other
    [("pipeline", b"lite", None), ("voice_sample", b"\0" * MIB, "x.wav")],  # f5's, not lite's
], ids=["unknown", "unknown-before-pipeline", "other-pipelines-file"])
async def test_file_fields_no_pipeline_takes_are_refused_at_the_part_header(make_client, parts):
    client, host = await make_client()
    form = StreamedForm(parts + [("more", b"x", None)], stall_after=len(parts))
    # The body of the file part is sent but must not be needed: refuse at the header.
    error = await refused(await post_stalled(client, form), 422, "unknown_parameter", None)
    assert error["details"]["field"] == parts[-1][0]
    assert nothing_staged(host)
    form = StreamedForm([("file", b"x", "a.bin"), ("file2", b"\0" * MIB, "b.bin"), ("x", b"", None)], stall_after=2)
    await refused(await post_stalled(client, form, "/myspinbot/assets"), 422, "unknown_parameter", None)


async def test_staged_bytes_per_request_are_bounded(make_client):
    client, host = await make_client(max_request_bytes=1_000_000, max_upload_bytes=900_000)
    data = aiohttp.FormData()
    data.add_field("pipeline", "infinitetalk")
    data.add_field("portrait", io.BytesIO(b"\0" * 600_000), filename="a.png")
    data.add_field("speech_recording", io.BytesIO(b"\0" * 600_000), filename="b.wav")
    error = await refused(await client.post("/myspinbot/jobs", data=data), 413, "request_too_large", "MYSPINBOT_MAX_REQUEST_BYTES")
    assert error["details"]["max"] == 1_000_000 and nothing_staged(host)
    r = await client.post("/myspinbot/jobs", data=file_form("portrait", b"\0" * 950_000, "a.png", pipeline="lite"))
    await refused(r, 413, "file_too_large", "MYSPINBOT_MAX_UPLOAD_BYTES")


async def test_compressed_parts_are_refused(make_client):
    client, _ = await make_client()
    body = ("--b\r\nContent-Disposition: form-data; name=\"script\"\r\nContent-Encoding: deflate\r\n\r\n"
            "xyz\r\n--b--\r\n")
    r = await client.post("/myspinbot/jobs", data=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    await refused(r, 415, "unsupported_media_type", None)


# --- decoding runs off the event loop ----------------------------------------------------------

async def test_image_and_audio_are_decoded_off_the_event_loop(make_client, fixtures_dir, monkeypatch):
    threads: dict[str, list] = {}
    for name in ("accept_image", "accept_audio", "sniff_asset"):  # every upload goes through jobs/assets.py
        real = getattr(assets_module, name)
        monkeypatch.setattr(assets_module, name, lambda *a, _real=real, _name=name, **k:
                            threads.setdefault(_name, []).append(threading.current_thread()) or _real(*a, **k))
    client, _ = await make_client()
    portrait = (fixtures_dir / "portrait_astronaut.png").read_bytes()
    r = await client.post("/myspinbot/jobs", data=lite_form(portrait, (fixtures_dir / "speech_front_left.wav").read_bytes(),
                                                             audio_name="speech.wav"))
    assert r.status == 202, await r.text()
    assert (await upload(client, portrait, "p.png", "image/png")).status == 201
    assert sorted(threads) == ["accept_audio", "accept_image", "sniff_asset"]
    assert all(threading.current_thread() not in seen for seen in threads.values())  # never the loop's thread
