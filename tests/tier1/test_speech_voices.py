"""Voice catalogue parsing (myspinbot.speech.voices): language codes map to the voice file
espeak-ng prefers, names and variants are matched case-insensitively."""

from __future__ import annotations

import pytest

from myspinbot.errors import InvalidInputError
from myspinbot.speech.voices import catalog_from_data_dir, catalog_from_listing

LISTING = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  de              --/M      German             gmw/de
 2  en-gb           --/M      English_(Great_Britain) gmw/en          (en 2)
 5  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  es-419          --/M      Spanish_(Latin_America) roa/es-419      (es-mx 6)
"""
VARIANTS = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 0  variant          --/F      female3            !v/f3
 0  variant          --/M      Alex               !v/Alex
"""


def test_listing_codes_priorities_and_names():
    catalog = catalog_from_listing(LISTING, VARIANTS)
    assert catalog.codes == ("de", "en", "en-gb", "en-us", "es-419", "es-mx")
    assert catalog.check("en") == "gmw/en"  # priority 2 beats en-US's 3
    assert catalog.check("EN-US") == "gmw/en-US"
    assert catalog.check(" es-mx ") == "roa/es-419"
    assert catalog.check("English (America)") == "gmw/en-US"
    assert catalog.check("english_(great_britain)") == "gmw/en"
    assert catalog.check("de+FEMALE3") == "gmw/de+f3"
    assert catalog.check("de+alex") == "gmw/de+Alex"
    with pytest.raises(InvalidInputError, match="valid variants: Alex, f3"):
        catalog.check("de+f9")
    with pytest.raises(InvalidInputError, match="valid voices: de, en, en-gb"):
        catalog.check("fr")


def test_listing_without_variants_lets_any_variant_through():
    catalog = catalog_from_listing(LISTING)
    assert catalog.check("de+whatever") == "gmw/de+whatever"
    assert catalog_from_listing("garbage\n\n").codes == ()


def test_data_dir(tmp_path):
    (tmp_path / "lang" / "gmw").mkdir(parents=True)
    (tmp_path / "lang" / "gmq").mkdir(parents=True)
    (tmp_path / "voices" / "!v").mkdir(parents=True)
    (tmp_path / "lang" / "gmw" / "en").write_text("name English (Great Britain)\nlanguage en-gb 2\nlanguage en 2\n")
    (tmp_path / "lang" / "gmw" / "en-US").write_text("name English (America)\nlanguage en-us 2\nlanguage en 3\n")
    (tmp_path / "lang" / "gmw" / "nds").write_text("name Low German\nlanguage nds\ndictionary de\n")
    (tmp_path / "lang" / "gmq" / "fo").write_text("name Faroese\nlanguage fo\n")  # no fo_dict: left out
    for dictionary in ("en_dict", "de_dict"):
        (tmp_path / dictionary).write_bytes(b"\0")
    (tmp_path / "voices" / "!v" / "f3").write_text("variant\n")
    catalog = catalog_from_data_dir(tmp_path)
    assert catalog.codes == ("en", "en-gb", "en-us", "nds")
    assert catalog.check("en") == "gmw/en" and catalog.check("en-gb") == "gmw/en"
    assert catalog.check("en-us+F3") == "gmw/en-US+f3"
    assert catalog.check("low german") == "gmw/nds"
    with pytest.raises(InvalidInputError, match="unknown voice 'fo'"):
        catalog.check("fo")
    with pytest.raises(InvalidInputError):
        catalog.check(None)  # type: ignore[arg-type]
