"""Writing a node's media to a local file before it is uploaded (kept locally either way)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

AUDIO_FORMATS = ("wav", "flac")


def allocate_output_path(output_dir: str | os.PathLike, filename_prefix: str, ext: str) -> tuple[Path, str, str]:
    """Claim a new file ``<output_dir>/<folder of prefix>/<base>_<NNNNN>.<ext>`` (created empty,
    exclusively, so two runs never share one). Returns (path, subfolder, filename) with the
    subfolder relative to ``output_dir`` in POSIX form. Refuses a prefix leaving ``output_dir``."""
    root = Path(output_dir).resolve()
    prefix = (filename_prefix or "output").strip().replace("\\", "/")
    if prefix.startswith("/") or re.match(r"^[A-Za-z]:", prefix):
        raise InvalidInputError(f"filename_prefix must be relative to the output folder, got {filename_prefix!r}")
    folder, _, base = prefix.rpartition("/")
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "output"
    target_dir = (root / folder).resolve()
    if not target_dir.is_relative_to(root):
        raise InvalidInputError(f"filename_prefix leaves the output folder: {filename_prefix!r}")
    target_dir.mkdir(parents=True, exist_ok=True)
    ext = ext.lstrip(".").lower() or "bin"
    pattern = re.compile(rf"^{re.escape(base)}_(\d+)\.{re.escape(ext)}$")
    counters = [int(m.group(1)) for p in target_dir.iterdir() if (m := pattern.match(p.name))]
    counter = max(counters, default=0) + 1
    while True:
        path = target_dir / f"{base}_{counter:05d}.{ext}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            counter += 1
            continue
        os.close(fd)
        return path, target_dir.relative_to(root).as_posix() if target_dir != root else "", path.name


def resolve_within(path: str | os.PathLike, roots: list[str | os.PathLike], *, base: str | os.PathLike | None = None) -> Path:
    """``path`` resolved (symlinks followed; relative to ``base`` if given) if it is a file inside
    one of ``roots``, else ``InvalidInputError`` (so a workflow cannot upload arbitrary server files)."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        if base is None:
            raise InvalidInputError(f"file_path must be absolute: {path!r}")
        candidate = Path(base) / candidate
    resolved = candidate.resolve()
    if not any(resolved.is_relative_to(Path(r).resolve()) for r in roots):
        raise InvalidInputError(f"file_path must lie in ComfyUI's output, input or temp folder: {path!r}")
    if not resolved.is_file():
        raise InvalidInputError(f"file_path is not a file: {path!r}")
    return resolved


def write_png(frame: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a ``uint8 [H,W,C]`` frame (C = 1, 3 or 4) as PNG."""
    from PIL import Image

    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise InvalidInputError(f"expected a uint8 [H,W,1|3|4] image, got {frame.dtype} {tuple(frame.shape)}")
    image = Image.fromarray(frame[:, :, 0] if frame.shape[2] == 1 else frame)
    image.save(str(path), format="PNG", compress_level=4)
    return Path(path)


def write_audio(samples: np.ndarray, sample_rate: int, path: str | os.PathLike, fmt: str = "wav") -> Path:
    """Write float ``[C,T]`` samples as 16-bit WAV or FLAC (lossless)."""
    fmt = fmt.lower()
    if fmt not in AUDIO_FORMATS:
        raise InvalidInputError(f"audio format must be one of {AUDIO_FORMATS}, got {fmt!r}")
    if fmt == "wav":
        from ..speech.audio_io import write_wav

        return write_wav(path, samples, sample_rate)
    return _write_flac(samples, sample_rate, path)


def _write_flac(samples: np.ndarray, sample_rate: int, path: str | os.PathLike) -> Path:
    import av

    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] not in (1, 2) or not np.all(np.isfinite(array)):
        raise InvalidInputError("FLAC needs finite mono or stereo samples shaped [C,T]; use wav for more channels")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise InvalidInputError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    pcm = np.ascontiguousarray(np.round(np.clip(array, -1.0, 1.0) * 32767.0).astype(np.int16))
    layout = "mono" if pcm.shape[0] == 1 else "stereo"
    with av.open(str(path), mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=int(sample_rate), layout=layout)
        stream.format = "s16"
        chunk = 4096
        for start in range(0, pcm.shape[1], chunk):
            piece = np.ascontiguousarray(pcm[:, start:start + chunk].T.reshape(1, -1))  # packed s16
            frame = av.AudioFrame.from_ndarray(piece, format="s16", layout=layout)
            frame.sample_rate = int(sample_rate)
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Path(path)


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy bytes (the target may be a placeholder claimed by :func:`allocate_output_path`)."""
    shutil.copyfile(source, target)
    return Path(target)
