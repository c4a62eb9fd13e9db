"""The README demo: start ComfyUI headless with the pack, run one lite job, save out/demo.mp4.

Uses the real fixtures in ../shared/fixtures when they exist (portrait photo + speech
recording); otherwise the NASA portrait shipped in assets/ speaking a script with espeak-ng.
Needs COMFYUI_DIR (scripts/demo.sh sets it up).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

from comfy_process import REPO, ComfyProcess, comfyui_dir

FIXTURES = REPO.parent / "shared" / "fixtures"
DEFAULT_SCRIPT = ("Hello! I am a portrait that learned to talk. "
                  "myspinbot turned a single photo and a few words into this video, with no model weights at all.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo.mp4")
    parser.add_argument("--portrait", type=Path)
    parser.add_argument("--audio", type=Path, help="speech recording (wav/mp3/flac/m4a)")
    parser.add_argument("--script", help="text to speak instead of a recording")
    args = parser.parse_args()

    comfy_dir = comfyui_dir()
    if comfy_dir is None or not (comfy_dir / "main.py").is_file():
        print("COMFYUI_DIR must point at a ComfyUI checkout (scripts/demo.sh sets one up)", file=sys.stderr)
        return 2
    portrait = args.portrait or (FIXTURES / "portrait_astronaut.png" if FIXTURES.is_dir() else REPO / "assets" / "nasa_portrait.jpg")
    audio = args.audio
    script = args.script
    if audio is None and script is None:
        if (FIXTURES / "speech_front_left.wav").is_file():
            audio = FIXTURES / "speech_front_left.wav"
        else:
            script = DEFAULT_SCRIPT

    with tempfile.TemporaryDirectory(prefix="myspinbot-demo-") as scratch:
        print(f"starting ComfyUI from {comfy_dir} (headless, CPU) ...", flush=True)
        comfy = ComfyProcess("clone", Path(scratch), comfy_dir).start()
        try:
            return run_job(comfy, portrait, audio, script, args.out)
        finally:
            comfy.stop()
            print("ComfyUI stopped.")


def run_job(comfy: ComfyProcess, portrait: Path, audio: Path | None, script: str | None, out: Path) -> int:
    files = {"portrait": (portrait.name, portrait.read_bytes())}
    data = {"pipeline": "lite"}
    if audio is not None:
        files["audio"] = (audio.name, audio.read_bytes())
        print(f"portrait: {portrait}\nspeech:   {audio}")
    else:
        data["script"] = script
        print(f"portrait: {portrait}\nscript:   {script}")
    r = requests.post(comfy.url + "/myspinbot/jobs", data=data, files=files, timeout=60)
    if r.status_code != 202:
        print(f"job refused: {r.status_code} {r.text}", file=sys.stderr)
        return 1
    job = r.json()
    print(f"job {job['id']} queued")
    while job["status"] not in ("succeeded", "failed", "canceled"):
        time.sleep(0.5)
        job = requests.get(comfy.url + job["urls"]["self"], timeout=10).json()
        bar = "#" * int(job["progress"]["value"] * 30)
        print(f"\r[{bar:<30}] {job['progress']['value'] * 100:5.1f}% {job['status']:<10}", end="", flush=True)
    print()
    if job["status"] != "succeeded":
        print(f"job {job['status']}: {job['error']}", file=sys.stderr)
        return 1
    video = next(o for o in job["outputs"] if o["name"] == "video")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(requests.get(comfy.url + video["url"], timeout=60).content)
    print(f"wrote {out} ({video['size_bytes']} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
