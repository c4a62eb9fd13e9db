"""The model manager's engine side: manifest, locator, preflight and the verified,
resumable fetch against a local hub stand-in (see test_models_hub_standin.py). No real network."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from myspinbot.errors import (
    ModelChecksumError,
    ModelConflictError,
    ModelDownloadError,
    ModelsMissingError,
    OfflineError,
    UnknownModelError,
    code_from_message,
)
from myspinbot.models.fetch import fetch_model, offline_mode
from myspinbot.models.locate import ModelLocator, folder_dirs_from, models_dir_folder_dirs, sha256_file
from myspinbot.models.manifest import MANIFEST_FILE, load_manifest, parse_manifest, pipeline_models
from myspinbot.models.preflight import preflight, require
from test_models_hub_standin import hub  # noqa: F401  (fixture)

REPO = "acme/tiny-tts"
WEIGHTS = random.Random(7).randbytes(300_000)
CONFIG = b'{"dim": 16, "layers": 2}\n'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiny_manifest(*, weights_sha: str | None = None, config_sha: str | None = None, revision=None) -> dict:
    """A manifest with one small two-file model, in the real manifest's format."""
    return {
        "models": [{
            "name": "TinyTTS",
            "repo_id": REPO,
            "revision": revision,
            "folder": "tiny_tts",
            "subdir": "TinyTTS_v1",
            "files": [
                {"repo_path": "ckpt/weights.safetensors", "filename": "weights.safetensors",
                 "size_bytes": len(WEIGHTS), "sha256": weights_sha or sha(WEIGHTS)},
                {"repo_path": "config.json", "filename": "config.json", "size_bytes": len(CONFIG),
                 "sha256": config_sha or sha(CONFIG)},
            ],
            "licence": "CC-BY-NC-4.0",
            "licence_url": "https://creativecommons.org/licenses/by-nc/4.0/",
            "non_commercial": True,
            "used_by": ["TinyNode", "tiny"],
            "description": "test model",
        }]
    }


@pytest.fixture
def models(tmp_path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    return root


@pytest.fixture
def tiny(hub):  # noqa: F811
    hub.add(REPO, "ckpt/weights.safetensors", WEIGHTS)
    hub.add(REPO, "config.json", CONFIG, lfs=False)
    return parse_manifest(tiny_manifest())["TinyTTS"]


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# --- manifest ------------------------------------------------------------------------------

def test_real_manifest_loads_with_licences_and_users():
    manifest = load_manifest()
    assert MANIFEST_FILE.name == "manifest.json"
    f5 = manifest["F5TTS_v1_Base"]
    assert f5.repo_id == "SWivid/F5-TTS" and f5.folder == "f5_tts" and f5.subdir == "F5TTS_v1_Base"
    assert [f.repo_path for f in f5.files] == ["F5TTS_v1_Base/model_1250000.safetensors", "F5TTS_v1_Base/vocab.txt"]
    assert [f.filename for f in f5.files] == ["model_1250000.safetensors", "vocab.txt"]
    assert f5.non_commercial and f5.licence == "CC-BY-NC-4.0" and "non-commercial" in f5.licence_notice
    assert "MySpinBotVoiceCloneF5" in f5.used_by and "f5" in f5.used_by
    vocos = manifest["vocos_mel_24khz"]
    assert vocos.repo_id == "charactr/vocos-mel-24khz" and (vocos.folder, vocos.subdir) == ("vocoders", "vocos-mel-24khz")
    assert [f.filename for f in vocos.files] == ["config.yaml", "pytorch_model.bin"]
    assert not vocos.non_commercial and vocos.licence == "MIT"
    for entry in manifest.values():
        for f in entry.files:
            # Unknown values stay null (never invented); the entry then says so.
            assert f.size_bytes is None or f.size_bytes > 0
            assert f.sha256 is None or len(f.sha256) == 64
            if f.size_bytes is None or f.sha256 is None:
                assert "not verified" in entry.provenance, entry.name
    assert pipeline_models(manifest, ["lite", "f5"]) == {"lite": [], "f5": ["F5TTS_v1_Base", "vocos_mel_24khz"]}


@pytest.mark.parametrize("mutate, field", [
    (lambda m: m["models"][0].update(name="../x"), "name"),
    (lambda m: m["models"][0].update(subdir="a/b"), "subdir"),
    (lambda m: m["models"][0]["files"][0].update(sha256="ABC"), "sha256"),
    (lambda m: m["models"][0]["files"][0].update(size_bytes=-1), "size_bytes"),
    (lambda m: m["models"][0]["files"][0].update(filename="../evil"), "filename"),
    (lambda m: m["models"][0].update(non_commercial="no"), "non_commercial"),
    (lambda m: m["models"].append(dict(m["models"][0])), "twice"),
])
def test_manifest_validation_names_the_field(mutate, field):
    data = tiny_manifest()
    mutate(data)
    with pytest.raises(ValueError, match=field):
        parse_manifest(data)


# --- locator ----------------------------------------------------------------------------------

def test_missing_real_model_names_it_and_the_fetch_command(models):
    locator = ModelLocator(models_dir_folder_dirs(models))
    with pytest.raises(ModelsMissingError) as info:
        locator.find("F5TTS_v1_Base")
    err = info.value
    assert err.code == "models_missing" and code_from_message(str(err)) == "models_missing"
    assert "F5TTS_v1_Base" in err.message and "python install.py --models F5TTS_v1_Base" in err.message
    assert "model_1250000.safetensors" in err.message and str(models / "f5_tts" / "F5TTS_v1_Base") in err.message
    assert "non-commercial" in err.message
    assert err.details["missing"] == ["F5TTS_v1_Base"]
    assert err.details["fetch"] == "python install.py --models F5TTS_v1_Base"
    assert err.details["files"] == [str(models / "f5_tts" / "F5TTS_v1_Base" / "model_1250000.safetensors"),
                                    str(models / "f5_tts" / "F5TTS_v1_Base" / "vocab.txt")]
    assert locator.missing_for(["F5TTS_v1_Base", "vocos_mel_24khz"]) == ["F5TTS_v1_Base", "vocos_mel_24khz"]
    assert locator.status("F5TTS_v1_Base")["state"] == "missing"
    with pytest.raises(UnknownModelError):
        locator.find("nope")


def test_locator_searches_every_folder_dir_and_checks_sha(tmp_path):
    manifest = parse_manifest(tiny_manifest())
    first, second = tmp_path / "a" / "tiny_tts", tmp_path / "b" / "tiny_tts"
    (second / "TinyTTS_v1").mkdir(parents=True)
    (second / "TinyTTS_v1" / "weights.safetensors").write_bytes(WEIGHTS)
    (second / "TinyTTS_v1" / "config.json").write_bytes(CONFIG)
    locator = ModelLocator(lambda folder: [tmp_path / "a" / folder, tmp_path / "b" / folder], manifest)
    found = locator.find("TinyTTS")
    assert found == {"weights.safetensors": second / "TinyTTS_v1" / "weights.safetensors",
                     "config.json": second / "TinyTTS_v1" / "config.json"}
    status = locator.status("TinyTTS")
    assert status["state"] == "present" and status["warnings"] == [] and status["directory"] == str(first / "TinyTTS_v1")
    assert [f["sha256"] for f in status["files"]] == ["match", "match"]
    assert status["size_bytes"] == len(WEIGHTS) + len(CONFIG)


def test_hand_placed_files_are_listed_usable_and_only_warned_about(tmp_path):
    manifest = parse_manifest(tiny_manifest())
    root = tmp_path / "models"
    model_dir = root / "tiny_tts" / "TinyTTS_v1"
    model_dir.mkdir(parents=True)
    finetune = b"my fine-tune" * 1000
    (model_dir / "weights.safetensors").write_bytes(finetune)  # different size: a custom fine-tune
    (model_dir / "config.json").write_bytes(CONFIG)
    (model_dir / "notes.txt").write_text("mine")
    (root / "tiny_tts" / "my_voice").mkdir()
    (root / "tiny_tts" / "my_voice" / "model.safetensors").write_bytes(b"other")
    locator = ModelLocator(models_dir_folder_dirs(root), manifest)

    assert locator.find("TinyTTS")["weights.safetensors"] == model_dir / "weights.safetensors"
    status = locator.status("TinyTTS")
    assert status["state"] == "modified" and status["present"]
    weights = status["files"][0]
    assert weights["size_bytes"] == len(finetune) and weights["size_ok"] is False and weights["matches_manifest"] is False
    assert status["extras"] == [str(model_dir / "notes.txt")]
    assert set(map(str, locator.hand_placed("tiny_tts"))) == {str(model_dir / "notes.txt"),
                                                             str(root / "tiny_tts" / "my_voice" / "model.safetensors")}

    report = preflight({"tiny": ["TinyTTS"], "lite": []}, locator)
    assert report["lite"] == {"ready": True, "models": [], "missing": [], "errors": [], "warnings": []}
    tiny = report["tiny"]
    assert tiny["ready"] and tiny["errors"] == [] and tiny["missing"] == []
    assert [(w["code"], w["model"], w["file"], w["reason"]) for w in tiny["warnings"]] == \
        [("model_modified", "TinyTTS", "weights.safetensors", "size")]
    assert require(["TinyTTS"], locator)["TinyTTS"]["config.json"] == model_dir / "config.json"


def test_same_size_but_different_bytes_is_a_sha_warning(tmp_path):
    manifest = parse_manifest(tiny_manifest())
    model_dir = tmp_path / "tiny_tts" / "TinyTTS_v1"
    model_dir.mkdir(parents=True)
    (model_dir / "weights.safetensors").write_bytes(bytes(len(WEIGHTS)))
    (model_dir / "config.json").write_bytes(CONFIG)
    locator = ModelLocator(models_dir_folder_dirs(tmp_path), manifest)
    assert locator.status("TinyTTS", verify=False)["files"][0]["sha256"] == "unchecked"
    status = locator.status("TinyTTS")
    assert status["files"][0]["sha256"] == "mismatch" and status["state"] == "modified"
    assert preflight({"tiny": ["TinyTTS"]}, locator)["tiny"]["warnings"][0]["reason"] == "sha256"


def test_null_sha256_means_size_only_check(tmp_path):
    data = tiny_manifest()
    data["models"][0]["files"][1]["sha256"] = None
    locator = ModelLocator(models_dir_folder_dirs(tmp_path), parse_manifest(data))
    model_dir = tmp_path / "tiny_tts" / "TinyTTS_v1"
    model_dir.mkdir(parents=True)
    (model_dir / "weights.safetensors").write_bytes(WEIGHTS)
    (model_dir / "config.json").write_bytes(b"x" * len(CONFIG))
    config = locator.status("TinyTTS")["files"][1]
    assert config["sha256"] == "unchecked" and config["size_ok"] and config["matches_manifest"] is True


def test_preflight_and_require_list_every_missing_model(models):
    locator = ModelLocator(models_dir_folder_dirs(models))
    manifest = locator.manifest
    report = preflight(pipeline_models(manifest, ["lite", "f5"]), locator)
    assert report["lite"]["ready"]
    f5 = report["f5"]
    assert not f5["ready"] and f5["missing"] == ["F5TTS_v1_Base", "vocos_mel_24khz"]
    (error,) = f5["errors"]
    assert error["code"] == "models_missing" and error["details"]["missing"] == ["F5TTS_v1_Base", "vocos_mel_24khz"]
    assert error["details"]["fetch"] == "python install.py --models F5TTS_v1_Base vocos_mel_24khz"
    with pytest.raises(ModelsMissingError) as info:
        require(["F5TTS_v1_Base", "vocos_mel_24khz"], locator)
    assert info.value.details["missing"] == ["F5TTS_v1_Base", "vocos_mel_24khz"]
    assert len(info.value.details["files"]) == 4


def test_folder_dirs_from_registers_unknown_folders_with_comfyui():
    registry = {"checkpoints": (["/c/models/checkpoints"], set())}

    def add_model_folder_path(name, path, is_default=False):
        registry.setdefault(name, ([], set()))[0].insert(0 if is_default else len(registry[name][0]), path)

    fake = SimpleNamespace(models_dir="/c/models", folder_names_and_paths=registry,
                           add_model_folder_path=add_model_folder_path,
                           get_folder_paths=lambda name: list(registry[name][0]))
    dirs = folder_dirs_from(fake)
    assert dirs("f5_tts") == [Path("/c/models/f5_tts")]
    add_model_folder_path("f5_tts", "/extra/f5_tts")
    assert dirs("f5_tts") == [Path("/c/models/f5_tts"), Path("/extra/f5_tts")]


# --- fetch -----------------------------------------------------------------------------------

def test_fetch_downloads_verifies_and_reports_progress(tiny, hub, models):  # noqa: F811
    calls = []
    paths = fetch_model(tiny, models / "tiny_tts", lambda done, total: calls.append((done, total)))
    model_dir = models / "tiny_tts" / "TinyTTS_v1"
    assert paths == {"weights.safetensors": model_dir / "weights.safetensors", "config.json": model_dir / "config.json"}
    assert (model_dir / "weights.safetensors").read_bytes() == WEIGHTS
    assert (model_dir / "config.json").read_bytes() == CONFIG
    total = len(WEIGHTS) + len(CONFIG)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert any(0 < done < total for done, _ in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert tree(models) == ["tiny_tts", "tiny_tts/TinyTTS_v1", "tiny_tts/TinyTTS_v1/config.json",
                            "tiny_tts/TinyTTS_v1/weights.safetensors"]  # no staging left
    assert all("/resolve/main/" in path for _, path, _ in hub.file_requests())

    n = len(hub.file_requests())
    assert fetch_model(tiny, models / "tiny_tts") == paths  # already there and verified: no request
    assert len(hub.file_requests()) == n
    assert ModelLocator(models_dir_folder_dirs(models), {"TinyTTS": tiny}).status("TinyTTS")["state"] == "present"


def test_fetch_uses_the_pinned_revision(hub, models):  # noqa: F811
    revision = "0123456789abcdef0123456789abcdef01234567"
    hub.add(REPO, "ckpt/weights.safetensors", WEIGHTS, revision=revision)
    hub.add(REPO, "config.json", CONFIG, revision=revision, lfs=False)
    entry = parse_manifest(tiny_manifest(revision=revision))["TinyTTS"]
    fetch_model(entry, models / "tiny_tts")
    assert all(f"/resolve/{revision}/" in path for _, path, _ in hub.file_requests())


def test_wrong_sha256_is_refused_and_leaves_nothing(hub, models):  # noqa: F811
    hub.add(REPO, "ckpt/weights.safetensors", WEIGHTS)
    hub.add(REPO, "config.json", CONFIG, lfs=False)  # not LFS: its etag is a git sha1, so the bytes are checked
    entry = parse_manifest(tiny_manifest(config_sha="0" * 64))["TinyTTS"]
    calls = []
    with pytest.raises(ModelChecksumError) as info:
        fetch_model(entry, models / "tiny_tts", lambda d, t: calls.append(d))
    err = info.value
    assert err.code == "model_checksum_mismatch" and err.details["file"] == "config.json"
    assert err.details["actual"] == sha(CONFIG) and err.details["expected"] == "0" * 64
    assert len(hub.gets()) == 2  # both files were downloaded, then the check refused them
    assert tree(models) == []  # no model file, no partial, no staging folder


def test_hub_sha_that_contradicts_the_manifest_is_refused_before_downloading(hub, models):  # noqa: F811
    hub.add(REPO, "ckpt/weights.safetensors", WEIGHTS)  # LFS: the hub advertises the true sha256
    hub.add(REPO, "config.json", CONFIG, lfs=False)
    entry = parse_manifest(tiny_manifest(weights_sha="f" * 64))["TinyTTS"]
    with pytest.raises(ModelChecksumError, match="the hub reports"):
        fetch_model(entry, models / "tiny_tts")
    assert hub.gets() == [] and tree(models) == []


def test_tampered_bytes_behind_a_correct_etag_are_refused(hub, models):  # noqa: F811
    tampered = bytearray(WEIGHTS)
    tampered[1000] ^= 0xFF
    hub.add(REPO, "ckpt/weights.safetensors", bytes(tampered), etag=sha(WEIGHTS))  # lies about its hash
    hub.add(REPO, "config.json", CONFIG, lfs=False)
    entry = parse_manifest(tiny_manifest())["TinyTTS"]
    with pytest.raises(ModelChecksumError) as info:
        fetch_model(entry, models / "tiny_tts")
    assert info.value.details["actual"] == sha(bytes(tampered))
    assert tree(models) == []


def test_interrupted_download_resumes_with_a_range_request(tiny, hub, models, monkeypatch):  # noqa: F811
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 50_000)  # written in 50 kB pieces
    hub.break_after = 100_000  # the first GET drops the connection after 100 kB ...
    hub.fail_gets = 1  # ... and huggingface_hub's in-call retry then gets a 503
    with pytest.raises(ModelDownloadError) as info:
        fetch_model(tiny, models / "tiny_tts")
    assert info.value.code == "model_download_failed" and "resumes" in info.value.message
    parts = list((models / ".myspinbot-downloads" / "TinyTTS").glob("weights.safetensors.*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size == 100_000
    assert not (models / "tiny_tts").exists()

    calls = []
    paths = fetch_model(tiny, models / "tiny_tts", lambda d, t: calls.append(d))
    assert paths["weights.safetensors"].read_bytes() == WEIGHTS
    assert hub.gets()[-2][2] == "bytes=100000-"  # weights resumed, then config.json
    assert calls[0] == 0 and 100_000 in calls
    assert not (models / ".myspinbot-downloads").exists()


def test_resume_survives_a_server_that_ignores_range(tiny, hub, models, monkeypatch):  # noqa: F811
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 50_000)
    hub.break_after, hub.fail_gets = 100_000, 1
    with pytest.raises(ModelDownloadError):
        fetch_model(tiny, models / "tiny_tts")
    hub.ignore_range = True
    calls = []
    paths = fetch_model(tiny, models / "tiny_tts", lambda d, t: calls.append((d, t)))
    assert paths["weights.safetensors"].read_bytes() == WEIGHTS
    assert max(d for d, _ in calls) == calls[-1][0] == calls[-1][1] == len(WEIGHTS) + len(CONFIG)


def test_offline_mode_says_what_is_missing_and_where_to_put_it(tiny, hub, models, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert offline_mode()
    with pytest.raises(OfflineError) as info:
        fetch_model(tiny, models / "tiny_tts")
    err = info.value
    assert err.code == "offline" and "HF_HUB_OFFLINE" in err.message
    model_dir = models / "tiny_tts" / "TinyTTS_v1"
    assert str(model_dir / "weights.safetensors") in err.message and str(model_dir / "config.json") in err.message
    assert f"{hub.url}/{REPO}/resolve/main/ckpt/weights.safetensors" in err.message
    assert "python install.py --models TinyTTS" in err.message
    assert err.details["missing"] == ["weights.safetensors", "config.json"]
    assert hub.file_requests() == [] and tree(models) == []


def test_offline_with_everything_present_is_fine(tiny, hub, models, monkeypatch):  # noqa: F811
    fetch_model(tiny, models / "tiny_tts")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert set(fetch_model(tiny, models / "tiny_tts")) == {"weights.safetensors", "config.json"}


def test_fetch_never_overwrites_a_hand_placed_file(tiny, hub, models):  # noqa: F811
    model_dir = models / "tiny_tts" / "TinyTTS_v1"
    model_dir.mkdir(parents=True)
    (model_dir / "weights.safetensors").write_bytes(b"my fine-tune")
    with pytest.raises(ModelConflictError):
        fetch_model(tiny, models / "tiny_tts")
    assert (model_dir / "weights.safetensors").read_bytes() == b"my fine-tune"
    fetch_model(tiny, models / "tiny_tts", overwrite=True)
    assert sha256_file(model_dir / "weights.safetensors") == sha(WEIGHTS)


def test_unknown_file_on_the_hub_is_a_download_error(hub, models):  # noqa: F811
    hub.add(REPO, "ckpt/weights.safetensors", WEIGHTS)  # config.json is not there
    entry = parse_manifest(tiny_manifest())["TinyTTS"]
    with pytest.raises(ModelDownloadError, match="config.json not found"):
        fetch_model(entry, models / "tiny_tts")
    assert hub.gets() == [] and tree(models) == []


def test_engine_modules_import_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, 'custom_nodes'); "
            "import myspinbot.models.manifest, myspinbot.models.locate, myspinbot.models.fetch, "
            "myspinbot.models.preflight, myspinbot.models.manager; "
            "bad = [m for m in ('torch', 'huggingface_hub', 'folder_paths', 'comfy') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
