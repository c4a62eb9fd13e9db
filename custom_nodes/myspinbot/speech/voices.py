"""Catalogue of espeak-ng voices: which names ``synthesize`` accepts, which codes it lists, and
which voice file each name selects.

Built either from an ``espeak-ng-data`` directory (files under ``lang/`` and ``voices/!v``)
or from the text printed by ``espeak-ng --voices`` / ``--voices=variant``. Pure parsing: no
library is loaded and nothing is cached here.

espeak-ng's ``SetVoiceByName`` finds voices by file name or display name, not by every
language code a file declares (``"en-gb"`` and ``"zh"`` fail), so each language code is mapped
to the file identifier (``"gmw/en"``) of its preferred voice: the lowest ``language`` priority,
as espeak-ng itself ranks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import InvalidInputError

# "(en 2)" entries in the "Other Languages" column of ``espeak-ng --voices``.
_OTHER_LANGUAGE = re.compile(r"\(([^\s()]+)\s+(\d+)\)")
_DEFAULT_PRIORITY = 5  # espeak-ng's priority for a ``language`` line without one


@dataclass(frozen=True, eq=False)
class VoiceCatalog:
    """What one espeak-ng installation can speak.

    Attributes:
        codes: sorted language codes (``"en"``, ``"en-gb"``, ``"de"``, ...), lower case.
        aliases: every accepted base voice name, lower-cased, mapped to the voice file
            identifier handed to espeak-ng: the codes (``"en-gb"`` -> ``"gmw/en"``), the
            identifiers themselves (``"gmw/en-us"`` -> ``"gmw/en-US"``), the files' base names
            (``"en-us"``) and display names (``"german"`` -> ``"gmw/de"``).
        variants: variant names usable after ``+`` (``"f3"`` in ``"en+f3"``), lower-cased,
            mapped to their file names (``"alex"`` -> ``"Alex"``); empty when unknown, in
            which case any variant is let through to espeak-ng as given.
    """

    codes: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    variants: Mapping[str, str] = field(default_factory=dict)

    def check(self, voice: str) -> str:
        """Validate a voice spec ``"base"`` or ``"base+variant"`` (case-insensitive).

        Returns:
            The spec to hand to espeak-ng: the base's voice file identifier, plus
            ``"+variant"`` spelled as the variant's file (``"en-gb+f3"`` -> ``"gmw/en+f3"``).

        Raises:
            InvalidInputError: ``voice`` is not a non-empty string, its base is not a known
                voice (the message lists the valid codes), or its variant is unknown.
        """
        if not isinstance(voice, str) or not voice.strip():
            raise InvalidInputError(
                f"voice must be a non-empty string such as 'en'; valid voices: {', '.join(self.codes)}"
            )
        spec = voice.strip()
        base, plus, variant = spec.partition("+")
        if base.lower() not in self.aliases:
            raise InvalidInputError(
                f"unknown voice {spec!r}; valid voices: {', '.join(self.codes)}",
                details={"voice": spec, "valid_voices": list(self.codes)},
            )
        if plus and self.variants and variant.lower() not in self.variants:
            valid = sorted(set(self.variants.values()), key=str.lower)
            raise InvalidInputError(
                f"unknown voice variant {variant!r} in {spec!r}; valid variants: {', '.join(valid)}",
                details={"voice": spec, "valid_variants": valid},
            )
        identifier = self.aliases[base.lower()]
        return f"{identifier}+{self.variants.get(variant.lower(), variant)}" if plus else identifier


class _Builder:
    """Accumulates voices (identifier, name, languages with priorities) into a catalogue."""

    def __init__(self) -> None:
        self.best: dict[str, tuple[int, str]] = {}  # code -> (priority, identifier)
        self.aliases: dict[str, str] = {}
        self.variants: dict[str, str] = {}

    def add_voice(self, identifier: str, name: str | None, languages: list[tuple[str, int]]) -> None:
        self.aliases[identifier.lower()] = identifier
        self.aliases.setdefault(identifier.rsplit("/", 1)[-1].lower(), identifier)
        if name:
            self.aliases.setdefault(name.lower(), identifier)
        for code, priority in languages:
            code = code.lower()
            if code not in self.best or (priority, identifier) < self.best[code]:
                self.best[code] = (priority, identifier)

    def add_variant(self, file_name: str, name: str | None = None) -> None:
        self.variants[file_name.lower()] = file_name
        if name:
            self.variants.setdefault(name.lower(), file_name)

    def build(self) -> VoiceCatalog:
        aliases = dict(self.aliases)
        aliases.update({code: identifier for code, (_, identifier) in self.best.items()})
        return VoiceCatalog(codes=tuple(sorted(self.best)), aliases=aliases, variants=dict(self.variants))


def _priority(text: str | None) -> int:
    return int(text) if text is not None and text.isdigit() else _DEFAULT_PRIORITY


def catalog_from_data_dir(data_path: str | Path) -> VoiceCatalog:
    """Read the voice files of an ``espeak-ng-data`` directory.

    Args:
        data_path: the ``espeak-ng-data`` directory (holding ``lang/`` and ``voices/``).

    Returns:
        A VoiceCatalog; its ``codes`` come from the ``language`` lines of ``lang/**``. Voices
        whose pronunciation dictionary (``<name>_dict``) is missing from the directory are
        left out (espeakng_loader 0.2.4 lacks ``fo``, ``kaa`` and ``xex``).
    """
    root = Path(data_path)
    builder = _Builder()
    lang_root = root / "lang"
    if lang_root.is_dir():
        for path in sorted(lang_root.rglob("*")):
            if not path.is_file():
                continue
            name, dictionary, languages = None, None, []
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split()
                if len(parts) < 2:
                    continue
                if parts[0] == "language":
                    languages.append((parts[1], _priority(parts[2] if len(parts) > 2 else None)))
                elif parts[0] == "name" and name is None:
                    name = " ".join(parts[1:])
                elif parts[0] == "dictionary" and dictionary is None:
                    dictionary = parts[1]
            # espeak-ng's default dictionary is the first language without its region
            dictionary = dictionary or (languages[0][0].split("-")[0] if languages else None)
            if dictionary is None or not (root / f"{dictionary}_dict").is_file():
                continue  # espeak-ng cannot pronounce text in a voice without its dictionary
            builder.add_voice(path.relative_to(lang_root).as_posix(), name, languages)
    variants_dir = root / "voices" / "!v"
    if variants_dir.is_dir():
        for path in sorted(variants_dir.iterdir()):
            if path.is_file():
                builder.add_variant(path.name)
    return builder.build()


def catalog_from_listing(voices_text: str, variants_text: str = "") -> VoiceCatalog:
    """Parse the output of ``espeak-ng --voices`` (and optionally ``--voices=variant``).

    Lines look like ``" 2  en-gb  --/M  English_(Great_Britain)  gmw/en  (en 2)"``: priority,
    language, age/gender, name (spaces as ``_``), file, then other languages with their
    priorities. The header line (starting ``Pty``) and malformed lines are skipped.

    Returns:
        A VoiceCatalog (with empty ``codes`` if nothing could be parsed).
    """
    builder = _Builder()
    for line in voices_text.splitlines():
        parts = line.split()
        if len(parts) < 5 or parts[0] == "Pty":
            continue
        languages = [(parts[1], _priority(parts[0]))]
        languages += [(code, int(p)) for code, p in _OTHER_LANGUAGE.findall(" ".join(parts[5:]))]
        builder.add_voice(parts[4], parts[3].replace("_", " "), languages)
        builder.aliases.setdefault(parts[3].lower(), parts[4])  # the underscored spelling too
    for line in variants_text.splitlines():
        parts = line.split()
        if len(parts) < 5 or parts[0] == "Pty":
            continue
        builder.add_variant(parts[4].rsplit("/", 1)[-1], parts[3])
    return builder.build()
