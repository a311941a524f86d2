"""The download against a real HTTP server on 127.0.0.1: resume, retries, checksums, errors."""

import hashlib
import socket

import pytest

from cifarflow.data.download import ChecksumError, DownloadError, fetch_archive, parse_checksum

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def quiet(_):
    pass


def test_download_verifies_and_leaves_no_partial_file(http_server, tmp_path):
    url = http_server.add("/a.tar.gz", PAYLOAD)
    dest = tmp_path / "a.tar.gz"
    fetch_archive(url, dest, sha256=SHA256, log=quiet)
    assert dest.read_bytes() == PAYLOAD
    assert list(tmp_path.iterdir()) == [dest]


def test_md5_is_accepted(http_server, tmp_path):
    fetch_archive(http_server.add("/a.tar.gz", PAYLOAD), tmp_path / "a", md5=MD5, log=quiet)
    assert (tmp_path / "a").read_bytes() == PAYLOAD


def test_cut_transfer_is_resumed_with_a_range_request(http_server, tmp_path):
    url = http_server.add("/a.tar.gz", PAYLOAD)
    http_server.cut_after = len(PAYLOAD) // 3
    fetch_archive(url, tmp_path / "a", sha256=SHA256, backoff=0.01, log=quiet)
    assert (tmp_path / "a").read_bytes() == PAYLOAD
    assert [r["range"] for r in http_server.requests] == [None, f"bytes={len(PAYLOAD) // 3}-"]


def test_partial_file_from_an_earlier_run_is_resumed(http_server, tmp_path):
    url = http_server.add("/a.tar.gz", PAYLOAD)
    dest = tmp_path / "a"
    http_server.cut_after = 1000
    with pytest.raises(DownloadError, match="after 1 attempts"):
        fetch_archive(url, dest, sha256=SHA256, retries=1, log=quiet)
    assert not dest.exists() and (tmp_path / "a.part").stat().st_size == 1000
    fetch_archive(url, dest, sha256=SHA256, log=quiet)
    assert dest.read_bytes() == PAYLOAD
    assert http_server.requests[-1]["range"] == "bytes=1000-"


def test_wrong_checksum_is_refused_and_nothing_is_kept(http_server, tmp_path):
    url = http_server.add("/a.tar.gz", PAYLOAD)
    with pytest.raises(ChecksumError, match="checksum mismatch.*nothing was kept"):
        fetch_archive(url, tmp_path / "a", sha256="0" * 64, log=quiet)
    assert list(tmp_path.iterdir()) == []


def test_404_fails_at_once_with_a_clear_error(http_server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_archive(http_server.url("/missing.tar.gz"), tmp_path / "a", sha256=SHA256, log=quiet)
    assert len(http_server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_server_errors_are_retried_then_reported(tmp_path):
    from http_server import ArchiveServer

    with ArchiveServer() as server:
        server.files = {}
        url = server.url("/down.tar.gz")
        server.httpd.RequestHandlerClass.do_GET = lambda self: self.send_error(503, "Unavailable")
        with pytest.raises(DownloadError, match="after 3 attempts: HTTP 503"):
            fetch_archive(url, tmp_path / "a", sha256=SHA256, retries=3, backoff=0.01, log=quiet)


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections: bound, never listening, for as long as the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def unresolvable(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize("unreachable", ["closed port", "unknown host"])
def test_no_network_fails_at_once_and_says_how_to_use_a_local_archive(tmp_path, closed_port, monkeypatch, unreachable):
    """No retries (one attempt, no wait) when nothing answers: a port nobody listens on, or a host name no resolver
    knows (the resolver's answer given without asking DNS)."""
    url = f"http://127.0.0.1:{closed_port}/cifar-10-python.tar.gz"
    if unreachable == "unknown host":
        monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
        url = "http://cifar.invalid/cifar-10-python.tar.gz"
    said = []
    with pytest.raises(DownloadError, match="no network.*--config archive=PATH"):
        fetch_archive(url, tmp_path / "a", md5=MD5, retries=5, backoff=0, log=said.append)
    assert said == [f"downloading {url} (attempt 1 of 5)"]
    assert list(tmp_path.iterdir()) == []


def test_local_archive_is_verified(tmp_path):
    source = tmp_path / "local.tar.gz"
    source.write_bytes(PAYLOAD)
    fetch_archive(str(source), tmp_path / "out" / "a", sha256=SHA256, log=quiet)
    assert (tmp_path / "out" / "a").read_bytes() == PAYLOAD
    with pytest.raises(ChecksumError):
        fetch_archive(str(source), tmp_path / "out" / "b", md5="0" * 32, log=quiet)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a"]
    with pytest.raises(DownloadError, match="does not exist"):
        fetch_archive(str(tmp_path / "nope"), tmp_path / "out" / "c", md5=MD5, log=quiet)


@pytest.mark.parametrize("md5,sha256,message", [
    (None, None, "checksum is required"),
    ("abc", None, "not 32 hex digits"),
    (None, "z" * 64, "not 64 hex digits"),
])
def test_bad_checksums_are_rejected(md5, sha256, message):
    with pytest.raises(ValueError, match=message):
        parse_checksum(md5, sha256)


def test_sha256_is_preferred_when_both_are_given():
    assert parse_checksum(MD5, SHA256.upper()) == ("sha256", SHA256)
