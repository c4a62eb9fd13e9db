"""Object storage engine against an S3-protocol server on loopback.

The server is moto's S3 server (``moto.server.ThreadedMotoServer``), an S3-protocol stand-in,
NOT MinIO or AWS: it speaks the same HTTP API (SigV4, multipart, HEAD, presigned GET) that the
``minio`` client uses against MinIO, S3 and R2. It runs in this process on 127.0.0.1 with a
free port; its object store lives in this process, so a stopped and restarted server still
has what was stored before (as a MinIO with a disk would).
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import json
import logging
import re
import socket
import urllib.request
from pathlib import Path

import pytest

from myspinbot.errors import InvalidInputError, StorageError
from myspinbot.storage import (
    PENDING,
    STORED,
    UI_KEY,
    PendingUpload,
    S3Settings,
    delete_local_copy,
    head,
    load_settings,
    presign,
    prompt_sha256,
    read_comfy_settings,
    render_key,
    retry_upload,
    store_output,
    upload_file,
    validate_key,
)
from myspinbot.storage.media import allocate_output_path, resolve_within, write_audio

from s3_standin import S3StandIn  # noqa: E402

STORAGE_PKG = Path(__file__).resolve().parents[2] / "custom_nodes" / "myspinbot" / "storage"
NODE_FILE = STORAGE_PKG.parent / "nodes" / "save_minio.py"

ACCESS_KEY = "MSBACCESSKEY7Q2Z"
SECRET_KEY = "msb-secret-5f1c9e7a2b8d4c60a1e3"
MIB = 1024 * 1024


def _settings(endpoint: str, **extra) -> S3Settings:
    env = {
        "MYSPINBOT_S3_ENDPOINT": endpoint,
        "MYSPINBOT_S3_ACCESS_KEY": ACCESS_KEY,
        "MYSPINBOT_S3_SECRET_KEY": SECRET_KEY,
        "MYSPINBOT_S3_REGION": "us-east-1",
        "MYSPINBOT_S3_RETRIES": "3",
        "MYSPINBOT_S3_BACKOFF_S": "0.01",
        "MYSPINBOT_S3_TIMEOUT_S": "5",
        "MYSPINBOT_S3_PART_SIZE_MB": "5",
    }
    env.update({f"MYSPINBOT_S3_{k.upper()}": str(v) for k, v in extra.items()})
    return load_settings(env=env, comfy_settings={})


def _write(path: Path, size: int, seed: int = 0) -> Path:
    block = hashlib.sha256(str(seed).encode()).digest()
    path.write_bytes((block * (size // len(block) + 1))[:size])
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    server = S3StandIn().start()
    yield server
    server.stop()


@pytest.fixture
def settings(s3) -> S3Settings:
    return _settings(s3.endpoint)


def _bucket(request) -> str:
    return "t-" + re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")


# --- upload, HEAD, presigned GET -------------------------------------------------------------
def test_upload_head_and_presigned_get_return_the_same_bytes(settings, tmp_path, request):
    bucket = _bucket(request)
    local = _write(tmp_path / "clip.mp4", 300_000, seed=1)
    before = _sha(local)
    stored = upload_file(settings, local, bucket, "jobs/j1/clip.mp4", None,
                         {"pipeline": "lite", "prompt-sha256": "ab" * 32}, create_bucket=True, presign_expiry_s=120)
    assert stored.uri == f"s3://{bucket}/jobs/j1/clip.mp4"
    assert stored.size == 300_000 and stored.content_type == "video/mp4" and stored.etag
    info = head(settings, bucket, "jobs/j1/clip.mp4")
    assert info["size"] == 300_000 and info["content_type"] == "video/mp4"
    assert info["metadata"] == {"pipeline": "lite", "prompt-sha256": "ab" * 32}
    assert "X-Amz-Expires=120" in stored.presigned_url
    assert _get(stored.presigned_url) == local.read_bytes()
    assert _get(presign(settings, bucket, "jobs/j1/clip.mp4", 60)) == local.read_bytes()
    assert _sha(local) == before  # the local file is untouched
    assert head(settings, bucket, "jobs/j1/missing.mp4") is None


def test_file_above_the_part_size_goes_multipart(s3, tmp_path, request):
    settings = _settings(s3.endpoint, part_size_mb=5, parallel=2)
    bucket = _bucket(request)
    local = _write(tmp_path / "big.bin", 12 * MIB, seed=2)
    progress: list[tuple[int, int]] = []
    stored = upload_file(settings, local, bucket, "big.bin", create_bucket=True,
                         on_progress=lambda done, total: progress.append((done, total)))
    assert stored.size == 12 * MIB
    assert stored.etag.endswith("-3")  # S3's multipart ETag: md5-of-part-md5s "-" part count
    assert progress[-1] == (12 * MIB, 12 * MIB)
    assert hashlib.sha256(_get(stored.presigned_url)).hexdigest() == _sha(local)


def test_bucket_is_created_only_when_asked(settings, tmp_path, request):
    bucket = _bucket(request)
    local = _write(tmp_path / "a.png", 1000, seed=3)
    sleeps: list[float] = []
    with pytest.raises(StorageError) as err:
        upload_file(settings, local, bucket, "a.png", sleep=sleeps.append)
    assert err.value.code == "storage_rejected" and "NoSuchBucket" in str(err.value)
    assert sleeps == []  # a refusal is not retried
    stored = upload_file(settings, local, bucket, "a.png", create_bucket=True, presign_expiry_s=0)
    assert stored.presigned_url is None and stored.content_type == "image/png"
    assert upload_file(settings, local, bucket, "b.png", create_bucket=True).size == 1000  # exists: fine


def test_5xx_is_retried_a_refusal_is_not_and_an_interrupt_propagates(settings, tmp_path, request, monkeypatch):
    from minio.error import InvalidResponseError, S3Error, ServerError

    from myspinbot.storage import s3 as s3mod

    class Response:
        def __init__(self, status):
            self.status, self.headers, self.data = status, {}, b""

    def s3_error(status, code):
        return S3Error(Response(status), code, "msg", "/r", "req", "host")

    assert s3mod._classify(s3_error(503, "SlowDown"))[:2] == (True, "storage_unavailable")
    assert s3mod._classify(s3_error(500, "InternalError"))[:2] == (True, "storage_unavailable")
    assert s3mod._classify(s3_error(403, "SignatureDoesNotMatch"))[:2] == (False, "storage_rejected")
    assert s3mod._classify(s3_error(403, "AccessDenied"))[:2] == (False, "storage_rejected")
    assert s3mod._classify(ServerError("bad gateway", 502))[:2] == (True, "storage_unavailable")
    assert s3mod._classify(ServerError("bad request", 400))[:2] == (False, "storage_rejected")
    assert s3mod._classify(InvalidResponseError(502, "text/html", "<html>"))[0] is True
    assert s3mod._classify(RuntimeError("a bug")) is None

    bucket = _bucket(request)
    local = _write(tmp_path / "r.bin", 10_000, seed=13)
    real, calls = s3mod._upload_once, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) < 3:
            raise ServerError("server failed with HTTP status code 503", 503)
        return real(*args, **kwargs)

    monkeypatch.setattr(s3mod, "_upload_once", flaky)
    sleeps: list[float] = []
    stored = upload_file(settings, local, bucket, "r.bin", create_bucket=True, backoff_s=0.25, sleep=sleeps.append)
    assert len(calls) == 3 and sleeps == [0.25, 0.5] and stored.size == 10_000
    monkeypatch.setattr(s3mod, "_upload_once", real)

    class Interrupted(Exception):
        pass

    def interrupt(done, total):
        if done:
            raise Interrupted

    big = _write(tmp_path / "i.bin", 6 * MIB, seed=14)
    with pytest.raises(Interrupted):
        upload_file(settings, big, bucket, "i.bin", sleep=sleeps.append, on_progress=interrupt)
    assert sleeps == [0.25, 0.5] and big.stat().st_size == 6 * MIB  # not retried, file kept
    assert head(settings, bucket, "i.bin") is None


# --- keys -----------------------------------------------------------------------------------
def test_key_template_renders_job_name_ext_and_date_parts():
    now = dt.datetime(2025, 3, 7, 9, 5, 1, tzinfo=dt.timezone.utc)
    assert render_key("{job_id}/{name}.{ext}", name="final", ext="mp4", job_id="job-42") == "job-42/final.mp4"
    assert render_key("out/{yyyy}/{mm}/{dd}/{date}_{time}/{uuid}/{name}.{ext}", name="a b", ext=".WAV",
                      now=now, uuid="u1") == "out/2025/03/07/2025-03-07_090501/u1/a_b.WAV"
    assert render_key("{pipeline}/{job_id}/{name}.{ext}", name="x", ext="png") == "none/local/x.png"
    assert re.fullmatch(r"myspinbot/\d{4}-\d\d-\d\d/[0-9a-f]{32}/video\.mp4",
                        render_key("myspinbot/{date}/{uuid}/{name}.{ext}", name="video", ext="mp4"))
    # field values cannot add folders or escape: they are reduced to safe characters
    assert render_key("{job_id}/{name}.{ext}", name="../../etc/passwd", ext="mp4", job_id="../x") == "x/etc_passwd.mp4"


@pytest.mark.parametrize("template", [
    "../{name}.{ext}", "a/../../{name}.{ext}", "/abs/{name}.{ext}", "a//{name}", "a/./{name}", "a\\{name}",
    "C:/x/{name}", "{unknown}/{name}", "{name.__class__}", "{name:>20}", "{name!r}", "{}", "{0}", "", "  ",
    "{name", "a/{name}/",
])
def test_key_template_refuses_traversal_and_unknown_fields(template):
    with pytest.raises(InvalidInputError):
        render_key(template, name="n", ext="mp4", job_id="j")


def test_validate_key_limits():
    assert validate_key("a/b.c/d..e") == "a/b.c/d..e"
    for bad in ("", "/a", "a/../b", "a/\x00", "x" * 1025):
        with pytest.raises(InvalidInputError):
            validate_key(bad)


# --- outage: before and in the middle of an upload --------------------------------------------
def test_server_down_raises_after_retries_with_backoff_and_keeps_the_file(tmp_path):
    settings = _settings(f"http://127.0.0.1:{_free_port()}", retries=4, backoff_s=0.5)  # nothing listens there
    local = _write(tmp_path / "v.mp4", 50_000, seed=4)
    before = _sha(local)
    sleeps: list[float] = []
    with pytest.raises(StorageError) as err:
        upload_file(settings, local, "some-bucket", "k/v.mp4", create_bucket=True, sleep=sleeps.append)
    assert err.value.code == "storage_unavailable" and err.value.details["attempts"] == 4
    assert "after 4 attempts" in str(err.value) and "kept" in str(err.value)
    assert sleeps == [0.5, 1.0, 2.0]  # exponential backoff between the 4 attempts
    assert _sha(local) == before


def test_server_stopped_mid_upload_keeps_the_file_and_a_retry_after_restart_stores_it(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    server = S3StandIn().start()
    try:
        settings = _settings(server.endpoint, part_size_mb=5, parallel=1)
        local = _write(tmp_path / "talk.mp4", 12 * MIB, seed=5)
        before = _sha(local)
        # the bucket exists and holds an earlier output before the outage
        older = _write(tmp_path / "older.mp4", 1000, seed=6)
        upload_file(settings, older, "outage", "older.mp4", create_bucket=True)

        seen: list[int] = []

        def cut_power(done: int, total: int) -> None:
            seen.append(done)
            if done >= 10 * MIB and server._server is not None:
                server.stop()  # part 1 is up, part 2 is read: the multipart upload is under way

        outcome = store_output(local, name="video", bucket="outage", key_template="{job_id}/{name}.{ext}",
                               settings=settings, job_id="job-7", pipeline="lite", prompt_hash="cd" * 32,
                               create_bucket=True, on_progress=cut_power, sleep=lambda s: None)
        assert server._server is None and max(seen) >= 10 * MIB  # stopped mid-upload indeed
        assert outcome.status == PENDING and outcome.uri is None and outcome.presigned_url is None
        assert outcome.error_code == "storage_unavailable" and "pending" in outcome.warning
        assert local.is_file() and _sha(local) == before  # nothing lost locally

        # what the node reports and the job service keeps: JSON, no credential
        block = json.loads(json.dumps(outcome.ui_block()))
        assert block["status"] == "pending" and block["local_path"] == str(local) and block["uri"] is None
        record = PendingUpload.from_dict(block["pending_upload"])
        assert (record.bucket, record.key, record.size) == ("outage", "job-7/video.mp4", 12 * MIB)
        assert record.metadata["myspinbot-pipeline"] == "lite" and record.attempts == 3

        # still down: the retry fails the same way, the file stays
        monkeypatch.setenv("MYSPINBOT_S3_ENDPOINT", server.endpoint)
        monkeypatch.setenv("MYSPINBOT_S3_ACCESS_KEY", ACCESS_KEY)
        monkeypatch.setenv("MYSPINBOT_S3_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("MYSPINBOT_S3_REGION", "us-east-1")
        monkeypatch.setenv("MYSPINBOT_S3_PART_SIZE_MB", "5")
        with pytest.raises(StorageError) as err:
            retry_upload(record, retries=2, backoff_s=0)
        assert err.value.code == "storage_unavailable" and record.attempts == 4 and record.last_error
        assert _sha(local) == before

        server.start()  # same port
        stored = retry_upload(record)  # settings from the environment, as the job service would
        assert stored.uri == "s3://outage/job-7/video.mp4" and stored.size == 12 * MIB
        assert record.attempts == 5 and record.last_error == ""
        assert hashlib.sha256(_get(stored.presigned_url)).hexdigest() == before
        assert head(settings, "outage", "older.mp4")["size"] == 1000  # what was stored before is still there
        assert head(settings, "outage", "job-7/video.mp4")["metadata"]["myspinbot-prompt-sha256"] == "cd" * 32
        assert local.is_file() and _sha(local) == before
    finally:
        server.stop()
    assert SECRET_KEY not in caplog.text


def test_mandatory_storage_raises_and_keeps_the_file(tmp_path):
    settings = _settings(f"http://127.0.0.1:{_free_port()}", retries=2)
    local = _write(tmp_path / "v.wav", 2000, seed=7)
    with pytest.raises(StorageError) as err:
        store_output(local, name="speech", bucket="b-mandatory", settings=settings, mandatory=True, sleep=lambda s: None)
    assert err.value.code == "storage_unavailable"
    assert local.is_file()


def test_unconfigured_storage_is_pending_or_fails_when_mandatory(tmp_path):
    local = _write(tmp_path / "v.png", 2000, seed=8)
    empty = load_settings(env={}, comfy_settings={})
    outcome = store_output(local, name="still", bucket="b-any", settings=empty)
    assert outcome.status == PENDING and outcome.error_code == "storage_not_configured"
    assert "MYSPINBOT_S3_ENDPOINT" in outcome.warning
    outcome = store_output(local, name="still", settings=_settings("http://127.0.0.1:1"))  # no bucket anywhere
    assert outcome.status == PENDING and outcome.error_code == "storage_not_configured"
    with pytest.raises(StorageError) as err:
        store_output(local, name="still", bucket="b-any", settings=empty, mandatory=True)
    assert err.value.code == "storage_not_configured"
    with pytest.raises(InvalidInputError):  # a workflow mistake is an error even when storage is optional
        store_output(local, name="still", bucket="Bad_Bucket", settings=empty)
    with pytest.raises(InvalidInputError):
        store_output(local, name="still", key_template="../{name}", bucket="b-any", settings=empty)


def test_store_output_reports_a_stored_block(settings, tmp_path, request):
    bucket = _bucket(request)
    local = _write(tmp_path / "img.png", 5000, seed=9)
    outcome = store_output(local, name="frame", bucket=bucket, key_template="{job_id}/{name}.{ext}", settings=settings,
                           job_id="j9", pipeline="lite", prompt_hash=prompt_sha256({"1": {"class_type": "X"}}),
                           create_bucket=True, presign_expiry_s=300)
    block = outcome.ui_block()
    assert block["status"] == STORED and block["warning"] is None and block["pending_upload"] is None
    assert block["uri"] == f"s3://{bucket}/j9/frame.png" and block["size"] == 5000
    assert _get(block["presigned_url"]) == local.read_bytes()
    meta = head(settings, bucket, "j9/frame.png")["metadata"]
    assert meta["myspinbot-name"] == "frame" and meta["myspinbot-job-id"] == "j9"
    assert meta["myspinbot-prompt-sha256"] == prompt_sha256({"1": {"class_type": "X"}})
    assert UI_KEY == "myspinbot_storage"


# --- local deletion only after a confirming HEAD ----------------------------------------------
def test_local_copy_is_deleted_only_after_a_head_with_matching_size(settings, tmp_path, request):
    bucket = _bucket(request)
    local = _write(tmp_path / "a.bin", 4000, seed=10)
    upload_file(settings, local, bucket, "a.bin", create_bucket=True)
    other = _write(tmp_path / "b.bin", 3999, seed=11)
    assert delete_local_copy(settings, bucket, "a.bin", other) is False and other.is_file()  # size differs
    assert delete_local_copy(settings, bucket, "missing.bin", other) is False and other.is_file()
    down = _settings(f"http://127.0.0.1:{_free_port()}")
    assert delete_local_copy(down, bucket, "a.bin", local) is False and local.is_file()  # cannot confirm
    assert delete_local_copy(settings, bucket, "a.bin", local) is True and not local.exists()


# --- credentials ------------------------------------------------------------------------------
def test_credentials_stay_out_of_logs_records_errors_and_repr(settings, tmp_path, request, caplog):
    caplog.set_level(logging.DEBUG)
    bucket = _bucket(request)
    local = _write(tmp_path / "c.mp4", 20_000, seed=12)
    stored = store_output(local, name="c", bucket=bucket, settings=settings, create_bucket=True)
    down = _settings(f"http://127.0.0.1:{_free_port()}", retries=2)
    pending = store_output(local, name="c", bucket=bucket, settings=down, sleep=lambda s: None)
    with pytest.raises(StorageError) as err:
        upload_file(down, local, bucket, "c.mp4", sleep=lambda s: None)
    assert "S3 client for S3Settings(" in caplog.text and "secret_key='***'" in caplog.text  # debug line, masked

    texts = {
        "logs": caplog.text,
        "stored block": json.dumps(stored.ui_block()),
        "pending block": json.dumps(pending.ui_block()),
        "record": json.dumps(pending.pending.to_dict()),
        "error": f"{err.value} {err.value.details}",
        "repr": repr(settings) + str(settings) + json.dumps(settings.public()),
    }
    for where, text in texts.items():
        assert SECRET_KEY not in text, where
    # the access key id appears only as SigV4 requires it: in a presigned URL's X-Amz-Credential
    # (and in the stand-in server's own request log, which is not ours)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    for where, text in {**texts, "logs": ours}.items():
        assert ACCESS_KEY not in re.sub(r"X-Amz-Credential=[^&\"]*", "", text), where
    assert repr(settings).count("***") == 2 and "session_token=''" in repr(settings)


def test_settings_from_env_and_comfy_settings_file(tmp_path):
    settings_file = tmp_path / "default" / "comfy.settings.json"
    settings_file.parent.mkdir()
    settings_file.write_text(json.dumps({
        "Comfy.Theme": "dark",
        "MySpinBot.S3.Endpoint": "https://minio.example:9000",
        "MySpinBot.S3.AccessKey": "FROMSETTINGS",
        "MySpinBot.S3.SecretKey": "settings-secret",
        "MySpinBot.S3.Bucket": "outputs",
        "MySpinBot.S3.Retries": 6,
    }))
    assert set(read_comfy_settings(settings_file)) == {"MySpinBot.S3.Endpoint", "MySpinBot.S3.AccessKey",
                                                       "MySpinBot.S3.SecretKey", "MySpinBot.S3.Bucket",
                                                       "MySpinBot.S3.Retries"}
    s = load_settings(env={"MYSPINBOT_S3_SECRET_KEY": "env-secret", "MYSPINBOT_S3_BUCKET": ""}, settings_file=settings_file)
    assert (s.endpoint, s.secure, s.access_key, s.secret_key, s.bucket, s.retries) == (
        "minio.example:9000", True, "FROMSETTINGS", "env-secret", "outputs", 6)  # env wins, empty env ignored
    assert s.configured and "env-secret" not in repr(s) and "FROMSETTINGS" not in repr(s)
    assert load_settings(env={"MYSPINBOT_S3_ENDPOINT": "http://h:1", "MYSPINBOT_S3_SECURE": "true"}).secure is True
    assert load_settings(env={"MYSPINBOT_S3_ENDPOINT": "h:1"}).secure is True
    assert load_settings(env={"MYSPINBOT_S3_ENDPOINT": "http://h:1"}).secure is False
    assert not load_settings(env={}, settings_file=tmp_path / "missing.json").configured
    for bad in ({"MYSPINBOT_S3_RETRIES": "many"}, {"MYSPINBOT_S3_PART_SIZE_MB": "4"},
                {"MYSPINBOT_S3_ENDPOINT": "http://user:pw@h:1"}, {"MYSPINBOT_S3_ENDPOINT": "http://h:1/path"}):
        with pytest.raises(InvalidInputError) as err:
            load_settings(env=bad)
        assert "pw" not in str(err.value)
    with pytest.raises(StorageError) as err:
        load_settings(env={"MYSPINBOT_S3_ENDPOINT": "h:1"}).require()
    assert err.value.code == "storage_not_configured" and "MYSPINBOT_S3_SECRET_KEY" in str(err.value)


def test_node_takes_no_credential_input():
    """The node's inputs (the only things a workflow or job can hold) name no credential."""
    tree = ast.parse(NODE_FILE.read_text())
    names = [node.args[0].value for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Input"
             and node.args and isinstance(node.args[0], ast.Constant)]
    assert "bucket" in names and "key_template" in names and "mandatory" in names
    for name in names:
        assert not re.search(r"secret|access|token|password|credential|endpoint|^key$", name), name


# --- local files ------------------------------------------------------------------------------
def test_output_paths_stay_in_the_output_folder(tmp_path):
    out = tmp_path / "output"
    out.mkdir()
    first, sub, name = allocate_output_path(out, "myspinbot/job-1/output", "mp4")
    second = allocate_output_path(out, "myspinbot/job-1/output", "mp4")[0]
    assert (sub, name, second.name) == ("myspinbot/job-1", "output_00001.mp4", "output_00002.mp4") and first.exists()
    for bad in ("../escape", "/abs/x", "a/../../x"):
        with pytest.raises(InvalidInputError):
            allocate_output_path(out, bad, "mp4")
    (tmp_path / "secret.txt").write_text("x")
    with pytest.raises(InvalidInputError):
        resolve_within(tmp_path / "secret.txt", [out])
    with pytest.raises(InvalidInputError):
        resolve_within("../secret.txt", [out], base=out)
    assert resolve_within("myspinbot/job-1/output_00001.mp4", [out], base=out) == first.resolve()


def test_audio_is_written_losslessly_as_wav_and_flac(tmp_path):
    import numpy as np

    from myspinbot.speech.audio_io import load_audio

    t = np.arange(8000, dtype=np.float32) / 16000
    samples = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 220 * t)]).astype(np.float32)
    for fmt in ("wav", "flac"):
        path = write_audio(samples, 16000, tmp_path / f"a.{fmt}", fmt)
        decoded, rate = load_audio(path)
        assert rate == 16000 and decoded.shape == samples.shape, fmt
        assert np.abs(decoded - samples).max() < 1e-3, fmt


def test_retry_refuses_a_local_file_that_is_gone_or_changed(settings, tmp_path):
    local = _write(tmp_path / "p.mp4", 1000, seed=15)
    record = PendingUpload(local_path=str(local), bucket="b-retry", key="p.mp4", content_type="video/mp4", size=999)
    with pytest.raises(StorageError) as err:
        retry_upload(record, settings)
    assert err.value.code == "storage_local_changed" and record.attempts == 1 and "changed" in record.last_error
    record.local_path = str(tmp_path / "gone.mp4")
    with pytest.raises(StorageError) as err:
        retry_upload(record, settings)
    assert err.value.code == "storage_local_missing" and record.attempts == 2
    assert PendingUpload.from_dict(json.loads(json.dumps(record.to_dict()))) == record
