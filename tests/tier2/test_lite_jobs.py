"""Tier 2: lite jobs through the job API of a real ComfyUI, on the real fixtures.

The recording job uses ``speech_front_left.wav`` + 0.8 s of silence + ``speech_front_right.wav``
(concatenated here, written as a 48 kHz WAV) so that the mouth has quiet stretches to follow.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import requests
from PIL import Image

from comfy_ws import WsWatcher
from media_checks import mouth_motion
from myspinbot.animate import locate_face
from myspinbot.speech import load_audio, write_wav
from myspinbot.video import iter_video_frames, probe_media

FPS = 25.0


@pytest.fixture(scope="module")
def speech_wav(fixtures_dir, tmp_path_factory):
    left, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    right, _ = load_audio(fixtures_dir / "speech_front_right.wav")
    audio = np.concatenate([np.zeros((1, rate // 5), np.float32), left, np.zeros((1, int(0.8 * rate)), np.float32), right], axis=1)
    path = tmp_path_factory.mktemp("speech") / "front_left_right.wav"
    write_wav(path, audio, rate)
    return path, audio, rate


def submit(comfy, files: dict, **fields) -> requests.Response:
    return requests.post(comfy.url + "/myspinbot/jobs", data={"pipeline": "lite", **fields}, files=files, timeout=60)


def portrait_file(fixtures_dir):
    return ("portrait_astronaut.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png")


def download(comfy, job, tmp_path):
    [video] = [o for o in job["outputs"] if o["name"] == "video"]
    assert video["type"] == "video" and video["content_type"] == "video/mp4"
    r = requests.get(comfy.url + video["url"], timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "video/mp4"
    assert len(r.content) == video["size_bytes"]
    path = tmp_path / "video.mp4"
    path.write_bytes(r.content)
    return path


def check_talking_video(path, portrait_rgb: np.ndarray, audio: np.ndarray | None, rate: int, *, motion: bool = True):
    info = probe_media(path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    assert info["video"]["codec"] == "h264" and info["audio"]["codec"] == "aac"
    assert (info["video"]["width"], info["video"]["height"]) == (portrait_rgb.shape[1], portrait_rgb.shape[0])
    # The speech given (a recording), or else the track in the file (the espeak-ng speech).
    audio_s = audio.shape[-1] / rate if audio is not None else info["audio"]["duration_s"]
    assert abs(info["video"]["duration_s"] - audio_s) <= 1.0 / FPS, (info, audio_s)
    if audio is not None:
        assert info["video"]["frame_count"] == math.ceil(audio_s * FPS)
    if motion:
        frames = np.stack(list(iter_video_frames(path))).astype(np.float32)
        face = locate_face(portrait_rgb).layout.face
        r, mouth_change, forehead_change = mouth_motion(frames, (face.x, face.y, face.w, face.h), audio, rate, FPS)
        assert r >= 0.3, f"mouth motion does not follow the speech: Pearson r = {r:.2f}"
        assert forehead_change.mean() < 0.25 * mouth_change.mean()


@pytest.fixture(scope="module")
def portrait_rgb(fixtures_dir):
    return np.asarray(Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB"))


@pytest.mark.parametrize("mode", ["comfy_clone", "comfy_basedir"])
def test_recording_job_succeeds_with_lip_synced_mp4(request, mode, fixtures_dir, speech_wav, portrait_rgb, tmp_path):
    comfy = request.getfixturevalue(mode)
    path, audio, rate = speech_wav
    with WsWatcher(comfy.url) as ws:
        r = submit(comfy, {"portrait": portrait_file(fixtures_dir), "audio": (path.name, path.read_bytes(), "audio/wav")})
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["status"] == "queued" and job["pipeline"] == "lite"
        done = comfy.wait_job(job["id"])
    assert done["status"] == "succeeded", done
    assert done["progress"]["value"] == 1.0 and done["error"] is None and done["started_at"] and done["completed_at"]
    check_talking_video(download(comfy, done, tmp_path), portrait_rgb, audio, rate)
    # It ran through ComfyUI's own queue: ComfyUI's history has it, and /ws clients saw the queue move.
    history = requests.get(f"{comfy.url}/history/{job['id']}", timeout=10).json()
    assert history[job["id"]]["status"]["status_str"] == "success"
    queue_sizes = [m["data"]["status"]["exec_info"]["queue_remaining"] for m in ws.messages if m.get("type") == "status"]
    assert any(n >= 1 for n in queue_sizes), ws.messages


def test_script_job_speaks_with_espeak(comfy_clone, fixtures_dir, portrait_rgb, tmp_path):
    r = submit(comfy_clone, {"portrait": portrait_file(fixtures_dir)}, script="Hello. I am a talking portrait, made with no model weights.")
    assert r.status_code == 202, r.text
    done = comfy_clone.wait_job(r.json()["id"])
    assert done["status"] == "succeeded", done
    video = download(comfy_clone, done, tmp_path)
    from myspinbot.video import load_audio as load_track

    track, track_rate = load_track(video)
    assert track.shape[-1] / track_rate > 1.5  # the sentence was spoken
    check_talking_video(video, portrait_rgb, None, track_rate, motion=False)
    # Mouth motion against the decoded track (AAC adds a little padding at the end only).
    frames = np.stack(list(iter_video_frames(video))).astype(np.float32)
    face = locate_face(portrait_rgb).layout.face
    r, mouth_change, forehead_change = mouth_motion(frames, (face.x, face.y, face.w, face.h), track, track_rate, FPS)
    assert r >= 0.3, f"mouth motion does not follow the espeak-ng speech: Pearson r = {r:.2f}"


def test_bad_inputs_fail_clearly_and_comfyui_keeps_running(comfy_clone, fixtures_dir, speech_wav, portrait_rgb, tmp_path):
    path, audio, rate = speech_wav
    speech = (path.name, path.read_bytes(), "audio/wav")
    # A photo with no face: the job is accepted, then fails with a clear code.
    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    r = submit(comfy_clone, {"portrait": ("noise.png", buf.getvalue(), "image/png"), "audio": speech})
    assert r.status_code == 202, r.text
    failed = comfy_clone.wait_job(r.json()["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "no_face_detected", failed
    assert "face" in failed["error"]["message"] and "Traceback" not in failed["error"]["message"]
    # Corrupt image, a non-audio 'audio', a missing portrait: 4xx JSON errors at once.
    cases = [
        ({"portrait": ("broken.png", b"\x89PNG\r\n\x1a\ncorrupt", "image/png"), "audio": speech}, "invalid_image"),
        ({"portrait": portrait_file(fixtures_dir), "audio": ("notes.wav", b"these are not samples" * 50, "audio/wav")}, "invalid_audio"),
        ({"audio": speech}, "missing_portrait"),
    ]
    for files, code in cases:
        r = submit(comfy_clone, files)
        assert 400 <= r.status_code < 500 and r.headers["Content-Type"].startswith("application/json"), r.text
        assert r.json()["error"]["code"] == code
    # ComfyUI is still up and the next job succeeds.
    r = submit(comfy_clone, {"portrait": portrait_file(fixtures_dir), "audio": speech}, seed="7")
    assert r.status_code == 202
    done = comfy_clone.wait_job(r.json()["id"])
    assert done["status"] == "succeeded", done
    check_talking_video(download(comfy_clone, done, tmp_path), portrait_rgb, audio, rate, motion=False)
