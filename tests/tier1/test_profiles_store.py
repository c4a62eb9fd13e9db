"""The profiles table (migration 3) and its repository, through ``JobStore.profiles``."""

from __future__ import annotations

import sqlite3

from myspinbot.server.migrations import MIGRATIONS
from myspinbot.server.repos.profiles import FAILED, READY, Profile
from myspinbot.server.store import JobStore


def test_profiles_round_trip_update_and_delete(open_store):
    """Both backends (SQLite's migration 3, PostgreSQL's 4)."""
    store = open_store()
    p = Profile(id="p1", name="Ann", trigger_word="zxq person", photos=[{"file": "photo_01.png", "name": "a.png"}],
                options={"steps": 3}, training_job_id="j1", created_at=1.0, updated_at=1.0)
    store.profiles.save(p)
    assert store.profiles.get("p1") == p
    assert store.profiles.by_training_job("j1") == p
    p.status, p.lora_name, p.error = READY, "myspinbot/profile_p1.safetensors", None
    store.profiles.save(p)
    assert store.profiles.get("p1").status == READY
    store.profiles.save(Profile(id="p2", name="Bob", status=FAILED, error={"code": "x", "message": "m", "details": {}},
                                created_at=2.0, updated_at=2.0))
    assert [q.id for q in store.profiles.all()] == ["p2", "p1"]
    assert store.profiles.get("p2").error["code"] == "x"
    store.profiles.delete("p1")
    assert store.profiles.get("p1") is None and store.profiles.by_training_job("j1") is None


def test_migration_adds_the_profiles_table_to_a_version_2_file(tmp_path):
    path = tmp_path / "old.sqlite3"
    from myspinbot.server.db import Database

    Database(path, migrations=MIGRATIONS[:2]).close()  # a file of the release before profiles
    JobStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 4
    columns = {row[1] for row in conn.execute("PRAGMA table_info(profiles)")}
    assert {"id", "name", "status", "trigger_word", "lora_name", "voice_path", "voice_transcript", "reference_photo",
            "training_job_id", "error", "created_at", "updated_at", "voice_model"} <= columns
    conn.close()


def test_migration_4_adds_the_voice_model_column_and_keeps_the_rows(tmp_path):
    from myspinbot.server.db import Database

    path = tmp_path / "v3.sqlite3"
    old = Database(path, migrations=MIGRATIONS[:3])
    with old.transaction() as conn:
        conn.execute("INSERT INTO profiles (id, name, status, trigger_word, photos, options, created_at, updated_at) "
                     "VALUES ('p1', 'Ann', 'ready', 't', '[]', '{}', 1.0, 1.0)")
    old.close()
    store = JobStore(path)
    profile = store.profiles.get("p1")
    assert profile.name == "Ann" and profile.voice_model is None
    profile.voice_model = "myspinbot/profile_p1"
    store.profiles.save(profile)
    assert store.profiles.get("p1").voice_model == "myspinbot/profile_p1"
    store.close()
