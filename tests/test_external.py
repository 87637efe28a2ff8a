"""The registry of published upstream files: mirror, download cache, checksums, failure."""

import hashlib
import http.server
import os
import threading
import time

import pytest
from clipsafety import external

KEY = "mlfoundations/open_clip/docs/openclip_results.csv"


def test_registry_pins_every_file_to_a_commit_and_sha256():
    reg = external.registry()
    assert len(reg) >= 30
    for f in reg.values():
        assert len(f.commit) == 40 and int(f.commit, 16) >= 0
        assert len(f.sha256) == 64
        assert f.url == f"https://raw.githubusercontent.com/{f.repo}/{f.commit}/{f.path}"
    assert reg[KEY].size == 38830


def test_unknown_key_names_it_and_suggests():
    with pytest.raises(KeyError, match="openclip_results.csv"):
        external.lookup("mlfoundations/open_clip/openclip_results.csv")


@pytest.fixture
def mirror():
    m = external.mirror_dir()
    if m is None or not (m / "mlfoundations").is_dir():
        pytest.skip("no mirror of the upstream files (set CLIPSAFETY_MIRROR)")
    return m


def test_fetch_from_mirror_is_verified(mirror):
    p = external.fetch(KEY)
    assert p == mirror / "mlfoundations/open_clip" / "docs/openclip_results.csv"
    assert hashlib.sha256(p.read_bytes()).hexdigest() == external.lookup(KEY).sha256


def test_corrupt_mirror_file_is_an_error(tmp_path, monkeypatch, mirror):
    f = external.lookup(KEY)
    bad = tmp_path / f.repo / f.path
    bad.parent.mkdir(parents=True)
    bad.write_bytes((mirror / f.repo / f.path).read_bytes()[:-10] + b"tampered!!")
    monkeypatch.setenv("CLIPSAFETY_MIRROR", str(tmp_path))
    with pytest.raises(external.ChecksumMismatch, match="sha256"):
        external.fetch(KEY)


def test_no_mirror_no_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSAFETY_MIRROR", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
    # a closed port on this machine: refused at once, no traffic leaves the machine
    monkeypatch.setattr(external, "URL", "http://127.0.0.1:9/{repo}/{commit}/{path}")
    t0 = time.time()
    with pytest.raises(external.ExternalUnavailable, match="CLIPSAFETY_MIRROR"):
        external.fetch(KEY)
    assert time.time() - t0 < 10
    assert not external.available(KEY)


def test_download_into_cache_then_reuse(tmp_path, monkeypatch, mirror):
    """Served from a local HTTP server laid out like the upstream URL."""
    f = external.lookup(KEY)
    site = tmp_path / "site" / f.repo / f.commit / f.path
    site.parent.mkdir(parents=True)
    site.write_bytes((mirror / f.repo / f.path).read_bytes())
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(tmp_path / "site"), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        monkeypatch.setattr(external, "URL", f"http://127.0.0.1:{port}/{{repo}}/{{commit}}/{{path}}")
        monkeypatch.delenv("CLIPSAFETY_MIRROR", raising=False)
        monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
        p = external.fetch(KEY)
        assert p.is_relative_to(tmp_path / "cache")
        assert hashlib.sha256(p.read_bytes()).hexdigest() == f.sha256
    finally:
        server.shutdown()
    # the server is gone: the cached copy answers
    assert external.fetch(KEY) == p
    # a tampered cache entry is caught
    p.write_bytes(b"x" + p.read_bytes()[1:])
    with pytest.raises(external.ChecksumMismatch):
        external.fetch(KEY)
    assert os.environ.get("CLIPSAFETY_MIRROR") is None
