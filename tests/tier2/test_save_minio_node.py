"""The Save to MinIO node inside a real ComfyUI, against moto's S3 server on loopback (an
S3-protocol stand-in, not MinIO); credentials reach ComfyUI only through its environment."""

from __future__ import annotations

import shutil
import urllib.request

from conftest import S3_ACCESS_KEY, S3_SECRET_KEY  # the values given to ComfyUI (tests/tier2/conftest.py)


def store_prompt(mandatory: bool = False) -> dict:
    return {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "s3_speech.wav"}},
        "2": {"class_type": "MySpinBotSaveToMinIO", "inputs": {
            "audio": ["1", 0], "bucket": "myspinbot-tier2", "key_template": "tier2/{uuid}/{name}.{ext}",
            "name": "speech", "create_bucket": True, "presign_expiry_s": 600, "mandatory": mandatory,
            "audio_format": "flac"}},
    }


def test_upload_head_and_presigned_fetch_return_the_same_bytes(comfy_clone, fixtures_dir):
    shutil.copyfile(fixtures_dir / "speech_front_left.wav", comfy_clone.input_dir / "s3_speech.wav")
    prompt = store_prompt()
    entry = comfy_clone.run_prompt(prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    [block] = entry["outputs"]["2"]["myspinbot_storage"]
    assert block["status"] == "stored" and block["uri"].startswith("s3://myspinbot-tier2/tier2/")
    local = comfy_clone.output_dir / block["local_path"] if not block["local_path"].startswith("/") else block["local_path"]
    with urllib.request.urlopen(block["presigned_url"], timeout=10) as response:
        fetched = response.read()
    assert fetched == open(local, "rb").read() and len(fetched) == block["size"]
    # No credential in the workflow, the history (ComfyUI's job record) or the log.
    for text in (str(prompt), str(entry), comfy_clone.log_text()):
        assert S3_SECRET_KEY not in text
    assert S3_ACCESS_KEY not in str(prompt)


def test_storage_down_keeps_the_local_file_and_reports_pending(comfy_clone, s3_standin, fixtures_dir):
    shutil.copyfile(fixtures_dir / "speech_front_left.wav", comfy_clone.input_dir / "s3_speech.wav")
    s3_standin.stop()
    try:
        entry = comfy_clone.run_prompt(store_prompt())
        assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
        [block] = entry["outputs"]["2"]["myspinbot_storage"]
        assert block["status"] == "pending" and block["warning"]
        local = comfy_clone.output_dir / block["local_path"] if not block["local_path"].startswith("/") else block["local_path"]
        assert open(local, "rb").read()[:4] == b"fLaC"
        failed = comfy_clone.run_prompt(store_prompt(mandatory=True))
        assert failed["status"]["status_str"] == "error"
        assert "[storage_unavailable]" in str(failed["status"]["messages"])
    finally:
        s3_standin.start()
    assert S3_SECRET_KEY not in comfy_clone.log_text()
