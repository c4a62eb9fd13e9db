"""``install.py`` as ComfyUI-Manager and users run it: a subprocess, against the hub stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_models import CONFIG, REPO, WEIGHTS, tiny_manifest
from test_models_hub_standin import hub  # noqa: F401  (fixture)

REPO_DIR = Path(__file__).resolve().parents[2]
INSTALL = REPO_DIR / "install.py"


def run_install(*args: str, env_extra: dict[str, str] | None = None, cwd: Path = REPO_DIR) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "COMFYUI_MODELS_DIR", "COMFYUI_DIR")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(INSTALL), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def hub_env(hub, tmp_path):  # noqa: F811
    return {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1"}


def test_no_arguments_is_a_light_status_check(tmp_path):
    result = run_install("--models-dir", str(tmp_path / "models"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "speech (espeak-ng)" in out and "ok" in out
    assert f"models directory: {tmp_path / 'models'} (--models-dir)" in out
    assert "F5TTS_v1_Base" in out and "NON-COMMERCIAL" in out and "missing" in out
    assert not (tmp_path / "models").exists()  # a check writes nothing


def test_no_arguments_never_imports_torch_or_the_hub_client(tmp_path):
    probe = (f"import sys, runpy; sys.argv = ['install.py', '--models-dir', {str(tmp_path)!r}]\n"
             f"try:\n    runpy.run_path({str(INSTALL)!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('HEAVY', [m for m in ('torch', 'huggingface_hub') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_models_dir_resolution_order(tmp_path):
    result = run_install("--list", env_extra={"COMFYUI_MODELS_DIR": str(tmp_path / "m1"), "COMFYUI_DIR": str(tmp_path / "c")})
    assert f"models directory: {tmp_path / 'm1'} ($COMFYUI_MODELS_DIR)" in result.stdout
    result = run_install("--list", env_extra={"COMFYUI_DIR": str(tmp_path / "c")})
    assert f"models directory: {tmp_path / 'c' / 'models'} ($COMFYUI_DIR/models)" in result.stdout
    result = run_install("--list")
    assert "models directory:" in result.stdout and "guessed" in result.stdout


def test_list_shows_licence_size_and_presence(tmp_path):
    models = tmp_path / "models"
    (models / "vocoders" / "vocos-mel-24khz").mkdir(parents=True)
    (models / "vocoders" / "vocos-mel-24khz" / "config.yaml").write_text("custom: true\n")
    result = run_install("--list", "--models-dir", str(models))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CC-BY-NC-4.0" in out and "non-commercial use only" in out and "1.26 GiB" in out
    assert "partial (missing pytorch_model.bin)" in out
    assert "warning:" in out and "config.yaml differs from the manifest" in out


def test_models_fetches_from_the_hub_with_progress(hub, hub_env, tmp_path):  # noqa: F811
    hub.add(REPO, "ckpt/weights.safetensors", WEIGHTS)
    hub.add(REPO, "config.json", CONFIG, lfs=False)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(tiny_manifest()))
    models = tmp_path / "models"
    result = run_install("--models", "TinyTTS", "--models-dir", str(models), "--manifest", str(manifest),
                         env_extra=hub_env)
    assert result.returncode == 0, result.stdout + result.stderr
    model_dir = models / "tiny_tts" / "TinyTTS_v1"
    assert (model_dir / "weights.safetensors").read_bytes() == WEIGHTS
    assert (model_dir / "config.json").read_bytes() == CONFIG
    assert "TinyTTS: ok (sha256 verified)" in result.stdout and "non-commercial" in result.stdout
    assert "TinyTTS: 100%" in result.stderr  # the tqdm bar
    assert sorted(p.name for p in models.iterdir()) == ["tiny_tts"]  # no staging left


def test_models_refuses_a_file_that_does_not_match_the_real_manifest(hub, hub_env, tmp_path):  # noqa: F811
    revision = "84e5a410d9cead4de2f847e7c9369a6440bdfaca"
    hub.add("SWivid/F5-TTS", "F5TTS_v1_Base/model_1250000.safetensors", b"not the weights", revision=revision)
    hub.add("SWivid/F5-TTS", "F5TTS_v1_Base/vocab.txt", b"a\nb\n", revision=revision, lfs=False)
    models = tmp_path / "models"
    result = run_install("--models", "F5TTS_v1_Base", "--models-dir", str(models), env_extra=hub_env)
    assert result.returncode == 1
    assert "[model_checksum_mismatch]" in result.stderr and "1348435761" in result.stderr
    assert not models.exists() or list(models.rglob("*")) == []


def test_models_offline_prints_where_to_put_the_files(tmp_path):
    result = run_install("--models", "vocos_mel_24khz", "--models-dir", str(tmp_path / "models"),
                         env_extra={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    assert "[offline]" in result.stderr
    assert str(tmp_path / "models" / "vocoders" / "vocos-mel-24khz" / "pytorch_model.bin") in result.stderr
    assert "charactr/vocos-mel-24khz/resolve/" in result.stderr


def test_unknown_model_name_is_refused():
    result = run_install("--models", "NoSuchModel")
    assert result.returncode == 2 and "unknown model" in result.stderr and "F5TTS_v1_Base" in result.stderr
