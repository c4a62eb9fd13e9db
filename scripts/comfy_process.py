"""Start a real ComfyUI (``$COMFYUI_DIR/main.py --cpu``) with the pack, in either load mode.

Modes:
- ``clone``: a scratch base directory whose ``custom_nodes/`` holds a link to this repository,
  as after ``git clone`` into ``ComfyUI/custom_nodes/`` (the repo's root ``__init__.py`` loads).
- ``base-directory``: ``--base-directory <repo>`` (``custom_nodes/myspinbot`` loads directly),
  with input/output/temp/user folders redirected to scratch folders.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


def comfyui_dir() -> Path | None:
    value = os.environ.get("COMFYUI_DIR")
    return Path(value) if value else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyProcess:
    def __init__(self, mode: str, scratch: Path, comfy_dir: Path, env: dict[str, str] | None = None,
                 listen: str = "127.0.0.1", extra_args: tuple[str, ...] = ()):
        self.mode = mode
        self.listen = listen  # requests still go to 127.0.0.1 (self.url)
        self.extra_args = tuple(extra_args)
        self.scratch = scratch
        self.comfy_dir = comfy_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = scratch / "comfyui.log"
        self.proc: subprocess.Popen | None = None
        self.extra_env = env or {}
        self.input_dir = scratch / "input"
        self.output_dir = scratch / "output"
        self.user_dir = scratch / "user"
        self.temp_dir = scratch / "temp"

    def argv(self) -> list[str]:
        for d in (self.input_dir, self.output_dir, self.user_dir, self.temp_dir):
            d.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, str(self.comfy_dir / "main.py"), "--cpu", "--listen", self.listen,
                "--port", str(self.port), "--disable-auto-launch", "--disable-api-nodes",
                "--input-directory", str(self.input_dir), "--output-directory", str(self.output_dir),
                "--user-directory", str(self.user_dir), "--temp-directory", str(self.temp_dir),
                "--database-url", f"sqlite:///{self.scratch / 'comfyui.db'}"]
        if self.mode == "clone":
            base = self.scratch / "base"
            (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
            link = base / "custom_nodes" / "myspinbot"
            if not link.exists():
                link.symlink_to(REPO, target_is_directory=True)
            args += ["--base-directory", str(base)]
        elif self.mode == "base-directory":
            args += ["--base-directory", str(REPO)]
        else:
            raise ValueError(self.mode)
        return args + list(self.extra_args)

    def start(self, timeout: float = 180.0) -> "ComfyProcess":
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.extra_env)
        self.proc = subprocess.Popen(self.argv(), cwd=self.comfy_dir, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/system_stats", timeout=2).status_code in (200, 401):  # 401: ComfyUI behind the token
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_job(self, job_id: str, timeout: float = 300.0) -> dict:
        """Poll ``GET /myspinbot/jobs/{id}`` until the job is terminal; returns the job JSON."""
        return self.wait_job_stages(job_id, timeout, poll_s=0.5)[0]

    def wait_job_stages(self, job_id: str, timeout: float = 300.0, poll_s: float = 0.2) -> tuple[dict, list[str]]:
        """Poll the job until it is terminal; returns it and the progress stages seen (in order)."""
        stages: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = requests.get(f"{self.url}/myspinbot/jobs/{job_id}", timeout=10).json()
            stage = (job.get("progress") or {}).get("stage")
            if stage and (not stages or stages[-1] != stage):
                stages.append(stage)
            if job["status"] in ("succeeded", "failed", "canceled"):
                return job, stages
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI died during job {job_id}:\n{self.log_tail()}")
            time.sleep(poll_s)
        raise TimeoutError(f"job {job_id} not done after {timeout}s (stages {stages}):\n{self.log_tail()}")

    def queue_prompt(self, prompt: dict, client_id: str = "myspinbot-tests") -> str:
        """Put an API-format prompt on ComfyUI's queue (``POST /prompt``); returns its prompt id."""
        prompt_id = str(uuid.uuid4())
        r = requests.post(self.url + "/prompt", json={"prompt": prompt, "prompt_id": prompt_id, "client_id": client_id}, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"ComfyUI refused the prompt: {r.status_code} {r.text}")
        return prompt_id

    def wait_history(self, prompt_id: str, timeout: float = 240.0) -> dict:
        """Poll ``GET /history/{id}`` until the prompt ended (success or error); returns the entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = requests.get(f"{self.url}/history/{prompt_id}", timeout=10).json().get(prompt_id)
            if entry and entry["status"]["status_str"] in ("success", "error"):
                return entry
            time.sleep(0.3)
        raise TimeoutError(f"prompt {prompt_id} not done after {timeout}s:\n{self.log_tail()}")

    def run_prompt(self, prompt: dict, client_id: str = "myspinbot-tests", timeout: float = 240.0) -> dict:
        """Queue a prompt and wait for its history entry."""
        return self.wait_history(self.queue_prompt(prompt, client_id), timeout)
