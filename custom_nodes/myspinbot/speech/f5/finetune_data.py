"""A fine-tuning dataset for F5-TTS in the layout the ``f5-tts`` package's ``CustomDataset`` reads.

Upstream: ``f5_tts/train/datasets/prepare_csv_wavs.py`` (its ``metadata.csv`` input and its
``raw.arrow`` / ``duration.json`` / ``vocab.txt`` output) and ``f5_tts/model/dataset.py``
(``CustomDataset`` with ``preprocessed_mel=True``, which reads a ``mel.arrow`` of
``{audio_path, text, duration, mel_spec}`` rows). The audio is decoded here with the pack's own
decoder (``audio_io``: PyAV) and the mel spectrograms are computed once with the package's
``MelSpec`` (24 kHz, 100 mels, hop 256, Vocos), so training never calls ``torchaudio.load``
(which needs torchcodec and FFmpeg's shared libraries).

Written to ``out_dir``: ``wavs/<nnnn>.wav`` (mono 24 kHz 16-bit, for inspection), ``mel.arrow``,
``duration.json`` (``{"duration": [seconds, ...]}``), ``vocab.txt`` (the base model's, unchanged:
fine-tuning keeps the text embedding's size) and ``metadata.csv`` (``wavs/<nnnn>.wav|text``).

Texts are tokenised as the package does for its ``pinyin`` tokenizer (``convert_char_to_pinyin``,
the same conversion inference applies); a clip whose text holds a token the vocab lacks is
refused (the model would read it as a space).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ...errors import InvalidInputError
from ..audio_io import load_audio, resample, to_mono, write_wav

SAMPLE_RATE = 24000
HOP_LENGTH = 256
N_MELS = 100
MIN_CLIP_SECONDS = 0.3  # CustomDataset skips rows outside 0.3-30 s; we refuse them instead
MAX_CLIP_SECONDS = 30.0
METADATA = "metadata.csv"
MEL_ARROW = "mel.arrow"
DURATIONS = "duration.json"
VOCAB = "vocab.txt"


@dataclass(frozen=True)
class FineTuneData:
    """A prepared dataset.

    Attributes:
        directory: the folder holding ``mel.arrow``, ``duration.json``, ``vocab.txt``.
        clips: number of clips.
        seconds: their total duration, s (at 24 kHz, after mixing to mono).
        durations: each clip's duration, s, in order.
    """

    directory: Path
    clips: int
    seconds: float
    durations: tuple[float, ...]


def read_metadata(folder: str | os.PathLike) -> list[tuple[Path, str]]:
    """``(audio path, text)`` pairs of a folder's ``metadata.csv``.

    One ``file|text`` per line, as F5-TTS' custom datasets use; ``file`` is relative to the
    folder (or absolute). A first line ``audio_file|text`` (the package's header) is skipped;
    blank lines are ignored.

    Raises:
        InvalidInputError: no ``metadata.csv``, a line without ``|`` or with an empty text, a
            file that does not exist, or no clip at all.
    """
    root = Path(folder)
    meta = root / METADATA
    if not meta.is_file():
        raise InvalidInputError(f"{meta} not found: put the clips and a metadata.csv ('file|text' per line) there")
    pairs: list[tuple[Path, str]] = []
    with open(meta, encoding="utf-8-sig", newline="") as f:
        for number, row in enumerate(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise InvalidInputError(f"{meta} line {number}: expected 'file|text'", details={"line": number})
            name, text = row[0].strip(), "|".join(row[1:]).strip()
            if number == 1 and name.lower() in ("audio_file", "file") and text.lower() == "text":
                continue
            if not text:
                raise InvalidInputError(f"{meta} line {number}: the transcript of '{name}' is empty",
                                        details={"line": number})
            path = Path(name) if Path(name).is_absolute() else root / name
            if not path.is_file():
                raise InvalidInputError(f"{meta} line {number}: '{name}' not found in {root}", details={"line": number})
            pairs.append((path, text))
    if not pairs:
        raise InvalidInputError(f"{meta} lists no clips")
    return pairs


def load_clips(pairs: Iterable[tuple[Path, str]]) -> list[tuple[str, np.ndarray, int, str]]:
    """Decode ``(path, text)`` pairs with the pack's decoder: ``(name, float32 [C, T], rate, text)``."""
    return [(Path(path).name, *load_audio(path), text) for path, text in pairs]


def read_vocab(vocab_path: str | os.PathLike) -> set[str]:
    """The tokens of a ``vocab.txt`` (one per line; the first line is the space)."""
    with open(vocab_path, encoding="utf-8") as f:
        return {line[:-1] if line.endswith("\n") else line for line in f}


def tokenise(text: str) -> list[str]:
    """The package's text conversion for its ``pinyin`` tokenizer (``convert_char_to_pinyin``):
    a list of tokens (characters; pinyin syllables for Chinese)."""
    from f5_tts.model.utils import convert_char_to_pinyin  # noqa: PLC0415

    return list(convert_char_to_pinyin([" ".join(text.split())], polyphone=True)[0])


def _mel_module():
    from f5_tts.model.modules import MelSpec  # noqa: PLC0415

    return MelSpec(n_fft=1024, hop_length=HOP_LENGTH, win_length=1024, n_mel_channels=N_MELS,
                   target_sample_rate=SAMPLE_RATE, mel_spec_type="vocos")


def check_clip(name: str, seconds: float, tokens: list[str], vocab: set[str]) -> None:
    """Refuse a clip the package would skip or misread.

    Raises:
        InvalidInputError: shorter than 0.3 s or longer than 30 s (code ``invalid_input``), or
            its text holds tokens outside the vocab (listed in ``details["unknown"]``).
    """
    if not MIN_CLIP_SECONDS <= seconds <= MAX_CLIP_SECONDS:
        raise InvalidInputError(f"clip '{name}' is {seconds:.2f} s long; fine-tuning clips must be "
                                f"{MIN_CLIP_SECONDS}-{MAX_CLIP_SECONDS:.0f} s (cut long recordings into sentences)",
                                details={"clip": name, "seconds": round(seconds, 3)})
    unknown = sorted({t for t in tokens if t not in vocab})
    if unknown:
        raise InvalidInputError(f"the transcript of clip '{name}' has characters the model's vocab lacks: "
                                f"{' '.join(repr(t) for t in unknown)}; write them out or remove them",
                                details={"clip": name, "unknown": unknown})


def prepare_finetune_data(clips: Iterable[tuple[str, np.ndarray, int, str]], vocab_path: str | os.PathLike,
                          out_dir: str | os.PathLike) -> FineTuneData:
    """Write the dataset for ``clips`` into ``out_dir`` (emptied first).

    Args:
        clips: ``(name, samples float32 [C, T] or [T] in -1..1, sample rate Hz, transcript)``.
        vocab_path: the base model's ``vocab.txt``.
        out_dir: the dataset folder (created; files of an earlier dataset are replaced).

    Returns:
        FineTuneData.

    Raises:
        InvalidInputError: no clips, an empty transcript, non-finite samples, a clip outside
            0.3-30 s, or characters outside the vocab (see ``check_clip``).
    """
    import torch  # noqa: PLC0415
    from datasets.arrow_writer import ArrowWriter  # noqa: PLC0415

    vocab = read_vocab(vocab_path)
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    (out / "wavs").mkdir(parents=True)
    mel_spec = _mel_module()
    rows, durations, lines = [], [], []
    for index, (name, samples, rate, text) in enumerate(clips):
        if not str(text or "").strip():
            raise InvalidInputError(f"the transcript of clip '{name}' is empty", details={"clip": name})
        mono = resample(to_mono(samples), int(rate), SAMPLE_RATE)
        if not np.all(np.isfinite(mono)):
            raise InvalidInputError(f"clip '{name}' holds NaN or infinite samples", details={"clip": name})
        seconds = mono.shape[-1] / SAMPLE_RATE
        tokens = tokenise(str(text))
        check_clip(name, seconds, tokens, vocab)
        wav = out / "wavs" / f"{index:04d}.wav"
        write_wav(wav, mono, SAMPLE_RATE)
        with torch.inference_mode(False), torch.no_grad():
            mel = mel_spec(torch.from_numpy(np.ascontiguousarray(mono)))[0]  # [100, frames]
        rows.append({"audio_path": str(wav), "text": tokens, "duration": seconds, "mel_spec": mel.tolist()})
        durations.append(seconds)
        lines.append(f"wavs/{wav.name}|{' '.join(str(text).split())}")
    if not rows:
        raise InvalidInputError("no clips to fine-tune on")
    with ArrowWriter(path=str(out / MEL_ARROW)) as writer:
        for row in rows:
            writer.write(row)
        writer.finalize()
    (out / DURATIONS).write_text(json.dumps({"duration": durations}), encoding="utf-8")
    shutil.copyfile(vocab_path, out / VOCAB)
    (out / METADATA).write_text("audio_file|text\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return FineTuneData(out, len(rows), float(sum(durations)), tuple(durations))


def open_finetune_data(directory: str | os.PathLike):
    """The package's ``CustomDataset`` over a prepared folder (``preprocessed_mel=True``).

    Raises:
        InvalidInputError: the folder lacks ``mel.arrow`` or ``duration.json``.
    """
    from datasets import Dataset  # noqa: PLC0415
    from f5_tts.model.dataset import CustomDataset  # noqa: PLC0415

    root = Path(directory)
    for name in (MEL_ARROW, DURATIONS):
        if not (root / name).is_file():
            raise InvalidInputError(f"{root} is not a prepared fine-tuning dataset ({name} missing)")
    durations = json.loads((root / DURATIONS).read_text(encoding="utf-8"))["duration"]
    return CustomDataset(Dataset.from_file(str(root / MEL_ARROW)), durations=durations, preprocessed_mel=True,
                         target_sample_rate=SAMPLE_RATE, hop_length=HOP_LENGTH, n_mel_channels=N_MELS)
