"""Loading F5-TTS and its Vocos vocoder from local files, through the ``f5-tts`` package's
own loaders, and keeping them loaded (a small process-wide cache).

The package is imported on first use, never at import time. Its ``f5_tts.infer.utils_infer``
module has import-time effects of its own (it selects matplotlib's ``Agg`` backend, sets
``PYTORCH_ENABLE_MPS_FALLBACK=1`` and appends its ``third_party/BigVGAN`` folder to
``sys.path``); they happen the first time a model is loaded.

Model configuration (``model_cfg``):
    ``None`` or a name such as ``"F5TTS_v1_Base"``: the package's ``configs/<name>.yaml``
    (its ``model`` section: ``backbone``, ``arch``, ``mel_spec``). A mapping: either such a
    ``model`` section (with an ``arch`` key) or a bare ``arch`` mapping for the ``DiT``
    backbone (the tests pass a tiny one). Real and tiny models go through the same code.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ...errors import InvalidInputError, ModelsMissingError, SpeechEngineError

DEFAULT_MODEL = "F5TTS_v1_Base"
SAMPLE_RATE = 24000  # what F5-TTS v1 and vocos-mel-24khz run at
VOCOS_CONFIG = "config.yaml"
VOCOS_BIN = "pytorch_model.bin"  # what the package's load_vocoder reads (the hub layout)
VOCOS_SAFETENSORS = "model.safetensors"  # also accepted, loaded by load_vocos itself
INSTALL_HINT = "install it with: python custom_nodes/myspinbot/install.py --extras f5 (with ComfyUI's Python)"


@dataclass(eq=False)
class F5Bundle:
    """A loaded F5-TTS model and vocoder.

    Attributes:
        model: the package's ``CFM`` (with its ``DiT`` transformer), in eval mode.
        vocoder: a ``vocos.Vocos``, in eval mode.
        model_name: the config's name (``"F5TTS_v1_Base"``, or ``"custom"`` for a mapping).
        mel_spec_type: ``"vocos"``.
        sample_rate: output rate in Hz (24000).
        paths: ``{"checkpoint", "vocab", "vocoder_dir"}`` as loaded.
        key: the cache key (``None`` when loaded with ``load_f5`` directly).
        extras: room for a host's attachments (the ComfyUI node keeps its ModelPatcher here).
    """

    model: Any
    vocoder: Any
    model_name: str
    mel_spec_type: str
    sample_rate: int
    paths: dict[str, str]
    key: tuple | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self):
        """The device the model's weights are on now (a host may move them)."""
        return next(self.model.parameters()).device


def _import_f5():
    try:
        with warnings.catch_warnings():
            # pydub (imported by utils_infer, unused here) warns when no ffmpeg program is on PATH
            warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)
            from f5_tts import model as f5_model  # noqa: PLC0415
            from f5_tts.infer import utils_infer  # noqa: PLC0415
    except ImportError as exc:
        raise SpeechEngineError(f"the f5-tts package cannot be imported ({exc}); {INSTALL_HINT}") from exc
    return f5_model, utils_infer


def package_config(name: str = DEFAULT_MODEL) -> dict:
    """The ``model`` section of the package's ``configs/<name>.yaml`` (a plain dict)."""
    import yaml  # noqa: PLC0415
    from importlib.resources import files  # noqa: PLC0415

    _import_f5()
    resource = files("f5_tts").joinpath(f"configs/{name}.yaml")
    if not resource.is_file():
        raise InvalidInputError(f"the f5-tts package has no model config named '{name}'", details={"model": name})
    with resource.open("r", encoding="utf-8") as f:
        config = yaml.safe_load(f)
    return dict(config["model"])


def resolve_model_config(model_cfg: str | Mapping | None) -> tuple[str, str, dict, dict]:
    """``(name, backbone, arch, mel_spec)`` for a ``model_cfg`` as described in the module doc."""
    if model_cfg is None or isinstance(model_cfg, str):
        name = model_cfg or DEFAULT_MODEL
        section = package_config(name)
    elif isinstance(model_cfg, Mapping):
        name = str(model_cfg.get("name", "custom"))
        section = dict(model_cfg) if "arch" in model_cfg else {"backbone": "DiT", "arch": dict(model_cfg)}
        section.pop("name", None)
    else:
        raise InvalidInputError(f"model_cfg must be a config name or a mapping, got {type(model_cfg).__name__}")
    arch = dict(section["arch"])
    arch.pop("name", None)
    return name, str(section.get("backbone", "DiT")), arch, dict(section.get("mel_spec") or {})


def _check_mel_spec(mel_spec: Mapping, utils_infer) -> str:
    """The package's ``load_model`` builds its mel front end from its module constants; refuse
    a config that asks for other settings instead of silently ignoring them."""
    fixed = {
        "target_sample_rate": utils_infer.target_sample_rate,
        "n_mel_channels": utils_infer.n_mel_channels,
        "hop_length": utils_infer.hop_length,
        "win_length": utils_infer.win_length,
        "n_fft": utils_infer.n_fft,
    }
    for key, value in fixed.items():
        if key in mel_spec and int(mel_spec[key]) != int(value):
            raise InvalidInputError(f"model config asks for mel {key}={mel_spec[key]}, "
                                    f"but the f5-tts loader only supports {value}")
    mel_type = str(mel_spec.get("mel_spec_type", "vocos"))
    if mel_type != "vocos":
        raise InvalidInputError(f"mel_spec_type '{mel_type}' is not supported (only the Vocos vocoder is)")
    return mel_type


def _require_files(paths: dict[str, Path]) -> None:
    missing = [(role, p) for role, p in paths.items() if not p.is_file()]
    if missing:
        listing = ", ".join(f"{role} {p}" for role, p in missing)
        raise ModelsMissingError(
            f"F5-TTS model files not found: {listing}",
            details={"missing": [role for role, _ in missing], "files": [str(p) for _, p in missing]},
        )


def vocoder_weights(vocoder_dir: str | os.PathLike) -> Path:
    """The vocoder's weights file in ``vocoder_dir``: ``pytorch_model.bin`` if present, else
    ``model.safetensors``. Raises ModelsMissingError when the config or both are absent."""
    directory = Path(vocoder_dir)
    weights = directory / VOCOS_BIN
    if not weights.is_file() and (directory / VOCOS_SAFETENSORS).is_file():
        weights = directory / VOCOS_SAFETENSORS
    _require_files({"vocoder config": directory / VOCOS_CONFIG, "vocoder weights": weights})
    return weights


def load_vocos(vocoder_dir: str | os.PathLike, device: str = "cpu"):
    """Load a Vocos vocoder from a local folder holding ``config.yaml`` and weights.

    ``pytorch_model.bin`` (the hub layout) goes through the package's own
    ``utils_infer.load_vocoder(vocoder_name="vocos", is_local=True, local_path=...)``, which
    reads only that file name. ``model.safetensors`` is loaded here the same way the package
    does it: ``vocos.Vocos.from_hparams(config.yaml)`` and a strict ``load_state_dict``.
    """
    weights = vocoder_weights(vocoder_dir)
    _, utils_infer = _import_f5()
    try:
        if weights.name == VOCOS_BIN:
            return utils_infer.load_vocoder(vocoder_name="vocos", is_local=True, local_path=str(Path(vocoder_dir)),
                                            device=str(device))
        from safetensors.torch import load_file  # noqa: PLC0415
        from vocos import Vocos  # noqa: PLC0415

        vocoder = Vocos.from_hparams(str(Path(vocoder_dir) / VOCOS_CONFIG))
        vocoder.load_state_dict(load_file(str(weights), device="cpu"), strict=True)
        return vocoder.eval().to(device)
    except (RuntimeError, KeyError, ValueError, OSError, TypeError) as exc:
        raise SpeechEngineError(f"cannot load the Vocos vocoder from {vocoder_dir}: {exc}",
                                details={"vocoder_dir": str(vocoder_dir)}) from exc


def load_f5(
    checkpoint_path: str | os.PathLike,
    vocab_path: str | os.PathLike,
    vocoder_dir: str | os.PathLike,
    device: str = "cpu",
    model_cfg: str | Mapping | None = None,
    *,
    dtype=None,
) -> F5Bundle:
    """Load F5-TTS and its vocoder with the package's ``load_model`` / ``load_vocoder``.

    Args:
        checkpoint_path: the EMA checkpoint (``model_1250000.safetensors``; a ``.pt`` works
            too). The package reads safetensors as ``ema_model.``-prefixed EMA weights and
            loads them strictly.
        vocab_path: the model's ``vocab.txt`` (one character per line).
        vocoder_dir: folder with Vocos ``config.yaml`` and ``pytorch_model.bin``
            (or ``model.safetensors``).
        device: where to load (``"cpu"``, ``"cuda"``, a ``torch.device``).
        model_cfg: see the module doc; default the package's F5TTS_v1_Base config.
        dtype: weights dtype of the F5 model; ``None`` leaves the package's choice (float16 on
            CUDA with compute capability >= 7, else float32). The vocoder stays float32.

    Raises:
        ModelsMissingError (``models_missing``): a file is absent.
        InvalidInputError: an unknown or unsupported model config.
        SpeechEngineError (``speech_failed``): f5-tts is not installed, or the files do not
            fit the config (wrong keys or shapes).
    """
    checkpoint, vocab = Path(checkpoint_path), Path(vocab_path)
    _require_files({"checkpoint": checkpoint, "vocab": vocab})
    vocoder_weights(vocoder_dir)
    name, backbone, arch, mel_spec = resolve_model_config(model_cfg)
    f5_model, utils_infer = _import_f5()
    mel_type = _check_mel_spec(mel_spec, utils_infer)
    model_cls = getattr(f5_model, backbone, None)
    if model_cls is None:
        raise InvalidInputError(f"f5-tts has no backbone named '{backbone}'")
    try:
        model = utils_infer.load_model(model_cls, arch, str(checkpoint), mel_spec_type=mel_type,
                                       vocab_file=str(vocab), device=str(device))
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise SpeechEngineError(
            f"cannot load F5-TTS '{name}' from {checkpoint} with vocab {vocab}: {exc}",
            details={"checkpoint": str(checkpoint), "vocab": str(vocab), "model": name},
        ) from exc
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    vocoder = load_vocos(vocoder_dir, device=device)
    return F5Bundle(
        model=model,
        vocoder=vocoder,
        model_name=name,
        mel_spec_type=mel_type,
        sample_rate=int(utils_infer.target_sample_rate),
        paths={"checkpoint": str(checkpoint), "vocab": str(vocab), "vocoder_dir": str(Path(vocoder_dir))},
    )


# --- the cache ------------------------------------------------------------------------------

_cache: dict[tuple, F5Bundle] = {}
_cache_lock = threading.RLock()


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def cache_key(checkpoint_path, vocab_path, vocoder_dir, device="cpu", model_cfg=None, dtype=None) -> tuple:
    """What identifies a loaded bundle: the files (path, size, mtime), device, dtype and config."""
    cfg = model_cfg if model_cfg is None or isinstance(model_cfg, str) else repr(sorted(dict(model_cfg).items()))
    weights_dir = Path(vocoder_dir)
    weights = weights_dir / VOCOS_BIN if (weights_dir / VOCOS_BIN).is_file() else weights_dir / VOCOS_SAFETENSORS
    return (_stamp(Path(checkpoint_path)), _stamp(Path(vocab_path)), _stamp(weights_dir / VOCOS_CONFIG),
            _stamp(weights), str(device), str(dtype), cfg or DEFAULT_MODEL)


def get_f5(checkpoint_path, vocab_path, vocoder_dir, device="cpu", model_cfg=None, *, dtype=None) -> F5Bundle:
    """``load_f5`` once per key (see ``cache_key``); later calls return the same bundle
    until ``release`` drops it."""
    key = cache_key(checkpoint_path, vocab_path, vocoder_dir, device, model_cfg, dtype)
    with _cache_lock:
        bundle = _cache.get(key)
        if bundle is None:
            bundle = load_f5(checkpoint_path, vocab_path, vocoder_dir, device, model_cfg, dtype=dtype)
            bundle.key = key
            _cache[key] = bundle
        return bundle


def release(bundle: F5Bundle | tuple | None = None) -> int:
    """Drop a cached bundle (a bundle or its key), or every one (``None``), so its memory can
    be freed once nothing else holds it. Returns how many were dropped."""
    with _cache_lock:
        if bundle is None:
            dropped = len(_cache)
            _cache.clear()
            return dropped
        key = bundle.key if isinstance(bundle, F5Bundle) else bundle
        return 1 if key is not None and _cache.pop(key, None) is not None else 0


def cached_bundles() -> list[F5Bundle]:
    """The bundles loaded now (oldest first)."""
    with _cache_lock:
        return list(_cache.values())


SIDECAR_CONFIG = "model_config.yaml"


def model_config_for(checkpoint_path: str | os.PathLike, model_name: str) -> str | dict:
    """The model config to build a checkpoint with.

    A ``model_config.yaml`` beside the checkpoint wins (a fine-tune with its own architecture:
    a ``model`` section or just its ``arch`` mapping); otherwise the package's config of that name
    (``F5TTS_v1_Base``), or F5TTS_v1_Base's for a fine-tune of it."""
    import yaml  # noqa: PLC0415

    sidecar = Path(checkpoint_path).with_name(SIDECAR_CONFIG)
    if sidecar.is_file():
        with open(sidecar, encoding="utf-8") as f:
            config = yaml.safe_load(f)
        if not isinstance(config, dict):
            raise InvalidInputError(f"{sidecar} must hold a mapping (a model section or an 'arch' mapping)")
        return config.get("model", config)
    try:
        package_config(model_name)
        return model_name
    except InvalidInputError:
        return DEFAULT_MODEL
