"""Verbatim scripts (cleaning of stage directions and speaker labels), the length budget and
prompt wording, and the script schema: myspinbot.script without any server."""

from __future__ import annotations

import pytest

from myspinbot.errors import ScriptWriterError
from myspinbot.script import (
    Script,
    build_messages,
    clean_script,
    json_schema,
    language_name,
    length_budget,
    parse_reply,
    split_directions,
    verbatim_script,
)


@pytest.mark.parametrize("raw, spoken", [
    ("Hello there.", "Hello there."),
    ("Hello [laughs] there.", "Hello there."),
    ("Well (pause) I think so.", "Well I think so."),
    ("*smiles* Welcome back!", "Welcome back!"),
    ("NARRATOR: Once upon a time.", "Once upon a time."),
    ("NARRATOR (V.O.): It began at dawn.", "It began at dawn."),
    ("Narrator: Calm words.", "Calm words."),
    ("Speaker 2: Right.", "Right."),
    ("**Host:** Today we talk about **cats**.", "Today we talk about cats."),
    ("JOHN: Hi!\nMARY: Hello!", "Hi!\nHello!"),
    ("Hi [laughs], friends , and (beat) welcome .", "Hi, friends, and welcome."),
    ("[music]\nFirst line.\n\n(pause)\n\nSecond paragraph.", "First line.\n\nSecond paragraph."),
    ("Hello ((very) quietly) there.", "Hello there."),
    ("# My video\n- point one\n* point two", "My video\npoint one\npoint two"),
    ("Prices rise 3*4 times; 2*x is fine.", "Prices rise 3*4 times; 2*x is fine."),
    ("Note: it is 10:30 now.", "Note: it is 10:30 now."),  # ordinary words before a colon stay
    ("ÉLODIE : Bonjour à tous.", "Bonjour à tous."),
    ("Line one\r\nLine two\r\n", "Line one\nLine two"),
])
def test_clean_script(raw, spoken):
    assert clean_script(raw) == spoken


def test_directions_are_collected_in_order_without_duplicates():
    spoken, directions = split_directions("A [laughs] b (pause) c *smiles* d [laughs] e.")
    assert spoken == "A b c d e."
    assert directions == ["laughs", "pause", "smiles"]


def test_verbatim_script_passes_words_through_unchanged():
    text = "Good evening. Tonight: three recipes, one pan, zero fuss!\n\nLet's begin."
    script = verbatim_script(text)
    assert script == Script(title="", narration=text, stage_description="", mood="")


def test_verbatim_script_puts_directions_in_the_stage_description():
    script = verbatim_script("HOST: [waves] Hi all. (leans in) Big news.")
    assert script.narration == "Hi all. Big news."
    assert script.stage_description == "waves; leans in"


@pytest.mark.parametrize("text, why", [("", "is empty"), ("   \n ", "is empty"),
                                       ("[laughs] (pause)\nNARRATOR:", "only stage directions")])
def test_verbatim_with_nothing_to_speak_is_script_empty(text, why):
    with pytest.raises(ScriptWriterError) as caught:
        verbatim_script(text)
    assert caught.value.code == "script_empty"
    assert why in str(caught.value) and "fix:" in str(caught.value)


# --- length and prompt --------------------------------------------------------------------

@pytest.mark.parametrize("seconds, language, count, unit", [
    (30, "English", 75, "words"), (60, "de", 150, "words"), (12, "", 30, "words"),
    (1, "en", 5, "words"), (10, "ja", 60, "characters"), (10, "zh-CN", 40, "characters"),
    (10, "Mandarin", 40, "characters"),
])
def test_length_budget(seconds, language, count, unit):
    budget = length_budget(seconds, language)
    assert (budget.count, budget.unit) == (count, unit)


@pytest.mark.parametrize("given, name", [("de", "German"), ("pt-BR", "Portuguese"), ("zh_CN", "Chinese"),
                                         ("", "English"), (None, "English"), ("Klingon", "Klingon"),
                                         ("French", "French")])
def test_language_name(given, name):
    assert language_name(given) == name


def test_messages_carry_style_language_and_length():
    messages = build_messages("Explain tides.", "Calm science teacher.", "fr", length_budget(20, "fr"))
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Calm science teacher." in messages[0]["content"]
    assert "in French, about 50 words" in messages[0]["content"]
    assert messages[1]["content"].startswith("Explain tides.")
    assert "about 50 words (roughly 20 seconds when spoken)" in messages[1]["content"]


# --- schema and reply parsing --------------------------------------------------------------

def test_json_schema_is_the_script_model():
    schema = json_schema()
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"title", "narration", "stage_description", "mood"}
    assert all(p["type"] == "string" for p in schema["properties"].values())
    assert schema["required"] == ["title", "narration", "stage_description", "mood"]
    assert schema["additionalProperties"] is False
    schema["properties"].clear()  # a copy: callers cannot corrupt the next request
    assert json_schema()["properties"]


def test_parse_reply_strips_whitespace_and_ignores_extra_keys():
    script = parse_reply('{"title": " T ", "narration": " Hi. ", "stage_description": "S", "mood": "m", "x": 1}')
    assert script == Script(title="T", narration="Hi.", stage_description="S", mood="m")


@pytest.mark.parametrize("reply, code", [
    ("", "script_empty"),
    ("[1, 2]", "script_invalid_output"),
    ('{"title": 3, "narration": "a", "stage_description": "b", "mood": "c"}', "script_invalid_output"),
    ('{"title": "t", "narration": "[laughs]", "stage_description": "b", "mood": "c"}', "script_empty"),
])
def test_parse_reply_errors(reply, code):
    with pytest.raises(ScriptWriterError) as caught:
        parse_reply(reply)
    assert caught.value.code == code
