"""A local stand-in for the Hugging Face hub's file endpoint, used by the model tests.

This is a *protocol stand-in*, not a mock of our code: a real HTTP server on 127.0.0.1
(set as ``HF_ENDPOINT``) answering the requests huggingface_hub 2.x makes to download a file,
as read in its ``file_download.py``:

- ``HEAD /{repo_id}/resolve/{revision}/{path}`` -> 200 with ``X-Repo-Commit``, ``ETag``
  (git-LFS files: ``X-Linked-Etag`` = sha256 and ``X-Linked-Size``), ``Content-Length``,
  ``Accept-Ranges``; unknown repo/file -> 404 with ``X-Error-Code`` ``RepoNotFound`` /
  ``EntryNotFound``.
- ``GET`` of the same URL -> the bytes; ``Range: bytes=N-`` -> 206 with ``Content-Range``.

The tests in this file check the stand-in against huggingface_hub's own ``hf_hub_download``,
so the model tests exercise the same protocol the real hub speaks. No real network.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

COMMIT = "5f3c1b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class HubFile:
    data: bytes
    lfs: bool = True
    etag: str | None = None  # what the hub advertises; default: sha256 (LFS) or git blob sha1

    def advertised_etag(self) -> str:
        if self.etag is not None:
            return self.etag
        if self.lfs:
            return hashlib.sha256(self.data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass
class HubStandIn:
    """The server's state: files by (repo, revision, path), a request log and test knobs."""

    files: dict[tuple[str, str, str], HubFile] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    gate: threading.Event | None = None  # when set on the object, GETs wait for it before sending bytes
    break_after: int | None = None  # the next GET sends this many bytes, then drops the connection
    fail_gets: int = 0  # that many GETs after a break answer 503
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request (some CDNs do)
    url: str = ""

    def add(self, repo_id: str, path: str, data: bytes, *, revision: str = "main", lfs: bool = True,
            etag: str | None = None) -> None:
        self.files[(repo_id, revision, path)] = HubFile(data, lfs, etag)

    def file_requests(self) -> list[tuple[str, str, str | None]]:
        """Requests for files (huggingface_hub also asks the endpoint for other things, e.g. its
        agent-harness registry, which the stand-in answers 404)."""
        return [r for r in self.requests if "/resolve/" in r[1]]

    def gets(self) -> list[tuple[str, str, str | None]]:
        return [r for r in self.file_requests() if r[0] == "GET"]


def _handler(hub: HubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def _lookup(self) -> HubFile | None:
            match = _RESOLVE.match(self.path.split("?", 1)[0])
            if match is None:
                self._error(404, "RepoNotFound")
                return None
            repo, rev, path = match["repo"], match["rev"], match["path"]
            if not any(key[0] == repo for key in hub.files):
                self._error(404, "RepoNotFound")
                return None
            if not any(key[:2] == (repo, rev) for key in hub.files):
                self._error(404, "RevisionNotFound")
                return None
            found = hub.files.get((repo, rev, path))
            if found is None:
                self._error(404, "EntryNotFound")
            return found

        def _error(self, status: int, code: str) -> None:
            body = b'{"error": "not found"}'
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _headers(self, f: HubFile, status: int, length: int, content_range: str | None = None) -> None:
            self.send_response(status)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{f.advertised_etag()}"')
            if f.lfs:
                self.send_header("X-Linked-Etag", f'"{f.advertised_etag()}"')
                self.send_header("X-Linked-Size", str(len(f.data)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            if content_range:
                self.send_header("Content-Range", content_range)
            self.end_headers()

        def do_HEAD(self):
            hub.requests.append(("HEAD", self.path, None))
            f = self._lookup()
            if f is not None:
                self._headers(f, 200, len(f.data))

        def do_GET(self):
            range_header = self.headers.get("Range")
            hub.requests.append(("GET", self.path, range_header))
            f = self._lookup()
            if f is None:
                return
            if hub.fail_gets > 0 and hub.break_after is None:  # 503s come after the break
                hub.fail_gets -= 1
                self._error(503, "ServiceUnavailable")
                return
            start = 0
            if range_header and not hub.ignore_range:
                m = re.fullmatch(r"bytes=(\d+)-", range_header.strip())
                start = int(m.group(1)) if m else 0
            body = f.data[start:]
            if start:
                self._headers(f, 206, len(body), f"bytes {start}-{len(f.data) - 1}/{len(f.data)}")
            else:
                self._headers(f, 200, len(body))
            if hub.gate is not None:
                hub.gate.wait(timeout=30)
            if hub.break_after is not None:
                cut, hub.break_after = hub.break_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def hub(monkeypatch):
    """A running stand-in hub; ``HF_ENDPOINT`` points at it and offline mode is off."""
    state = HubStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="hub-standin",
                              daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", state.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # huggingface_hub reads HF_ENDPOINT once at import; its own side requests must not leave the machine
    monkeypatch.setattr(constants, "ENDPOINT", state.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", state.url + "/{repo_id}/resolve/{revision}/{filename}")
    try:
        yield state
    finally:
        if state.gate is not None:
            state.gate.set()
        server.shutdown()
        server.server_close()


# --- the stand-in speaks the protocol huggingface_hub expects --------------------------------

def test_hf_hub_download_itself_accepts_the_standin(hub, tmp_path):
    from huggingface_hub import hf_hub_download

    data = bytes(range(256)) * 40
    hub.add("acme/tiny", "sub/weights.bin", data)
    hub.add("acme/tiny", "config.json", b'{"a": 1}', lfs=False)
    got = hf_hub_download("acme/tiny", "sub/weights.bin", endpoint=hub.url, local_dir=tmp_path / "dl",
                          cache_dir=tmp_path / "cache")
    assert open(got, "rb").read() == data
    got = hf_hub_download("acme/tiny", "config.json", endpoint=hub.url, local_dir=tmp_path / "dl",
                          cache_dir=tmp_path / "cache")
    assert open(got, "rb").read() == b'{"a": 1}'
    assert [m for m, *_ in hub.file_requests()] == ["HEAD", "GET", "HEAD", "GET"]


def test_standin_reports_missing_entries_like_the_hub(hub, tmp_path):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError

    hub.add("acme/tiny", "weights.bin", b"x" * 10)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("acme/tiny", "nope.bin", endpoint=hub.url, local_dir=tmp_path, cache_dir=tmp_path / "c")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("acme/other", "weights.bin", endpoint=hub.url, local_dir=tmp_path, cache_dir=tmp_path / "c")


def test_standin_serves_ranges(hub):
    import httpx2

    hub.add("acme/tiny", "weights.bin", b"0123456789")
    r = httpx2.get(f"{hub.url}/acme/tiny/resolve/main/weights.bin", headers={"Range": "bytes=4-"})
    assert r.status_code == 206 and r.content == b"456789"
    assert r.headers["Content-Range"] == "bytes 4-9/10"
