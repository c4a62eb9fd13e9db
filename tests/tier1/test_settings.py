"""The one settings object (``MYSPINBOT_*``): read from the environment once, typos ignored with a
warning, the environment never read behind a test's back."""

from __future__ import annotations

import logging

from myspinbot.server.settings import Settings, limit_details


def test_environment_is_read_by_from_env_only(monkeypatch):
    monkeypatch.setenv("MYSPINBOT_MAX_QUEUED", "7")
    assert Settings.from_env().max_queued == 7
    assert Settings().max_queued == Settings.defaults().max_queued == 100
    assert Settings(max_queued=3).max_queued == 3


def test_values_parse_and_a_bad_one_falls_back_to_its_default(caplog):
    caplog.set_level(logging.WARNING)
    s = Settings.from_env({"MYSPINBOT_WEBHOOK_ALLOW": "10.0.0.0/8, hooks.lan,", "myspinbot_protect_comfyui": "1",
                           "MYSPINBOT_MAX_AUDIO_S": "lots", "MYSPINBOT_MAX_FORM_PARTS": "0", "OTHER": "x"})
    assert s.webhook_allow == ("10.0.0.0/8", "hooks.lan") and s.protect_comfyui is True
    assert s.max_audio_s == Settings().max_audio_s and s.max_form_parts == Settings().max_form_parts
    assert "MYSPINBOT_MAX_AUDIO_S" in caplog.text and "MYSPINBOT_MAX_FORM_PARTS" in caplog.text


def test_the_token_never_shows_in_a_repr():
    assert "secret-token-value" not in repr(Settings(api_token="secret-token-value"))


def test_limit_details_name_the_variable():
    assert limit_details("max_script_chars", 10, 12) == {"limit": "MYSPINBOT_MAX_SCRIPT_CHARS", "max": 10, "actual": 12}


def test_the_database_url_is_a_postgresql_url_and_its_password_never_shows(caplog):
    caplog.set_level(logging.WARNING)
    url = "postgresql://myspinbot:pw-secret-1@db.lan:5432/jobs"
    assert Settings.from_env({"MYSPINBOT_DATABASE_URL": url}).database_url == url
    assert "pw-secret-1" not in repr(Settings(database_url=url))
    assert Settings.from_env({"MYSPINBOT_DATABASE_URL": " "}).database_url is None  # empty: SQLite
    assert Settings.from_env({"MYSPINBOT_DATABASE_URL": "mysql://u:pw-secret-2@h/db"}).database_url is None
    assert "MYSPINBOT_DATABASE_URL" in caplog.text and "pw-secret-2" not in caplog.text
    assert Settings.from_env({"MYSPINBOT_API_TOKEN": "", "MYSPINBOT_LEASE_S": "0"}).lease_s == Settings().lease_s
