"""Fetch a dataset archive: HTTP(S) with resume and retries, or a local copy; always checksum-verified.

The archive is first written to ``<dest>.part``; only a verified file is renamed to ``<dest>``, so a
half-written or corrupt archive never sits where later stages take it as done. A ``.part`` left by an
interrupted transfer is resumed with an HTTP Range request on the next attempt.
"""

import errno
import hashlib
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from ..errors import UserError

CHUNK_BYTES = 1 << 20
NO_RETRY_HTTP = {400, 401, 403, 404, 410}


class DownloadError(UserError, RuntimeError):
    """A download that cannot succeed by retrying; the message is meant for the user."""


class ChecksumError(DownloadError):
    pass


def parse_checksum(md5: str | None = None, sha256: str | None = None) -> tuple[str, str]:
    """Return (algorithm, hex digest), preferring sha256 when both are given."""
    if sha256:
        algorithm, digest = "sha256", sha256
    elif md5:
        algorithm, digest = "md5", md5
    else:
        raise ValueError("a checksum is required: give an md5 or a sha256")
    digest = digest.strip().lower()
    expected_length = hashlib.new(algorithm).digest_size * 2
    if len(digest) != expected_length or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{algorithm} checksum {digest!r} is not {expected_length} hex digits")
    return algorithm, digest


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, algorithm: str, expected: str) -> None:
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {path.name}: expected {algorithm} {expected}, got {actual}"
        )


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _is_offline_error(error: urllib.error.URLError) -> bool:
    reason = getattr(error, "reason", None)
    if isinstance(reason, socket.gaierror):
        return True
    return isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED)


class _Progress:
    """Logs a line every 10 % (or every 8 MiB when the size is unknown)."""

    def __init__(self, log: Callable[[str], None], total: int | None, start: int):
        self.log, self.total, self.done = log, total, start
        self.started = time.monotonic()
        self.start_bytes = start
        self.next_mark = 0

    def update(self, n_bytes: int) -> None:
        self.done += n_bytes
        if self.total:
            percent = int(100 * self.done / self.total)
            if percent >= self.next_mark:
                self.log(f"  {percent:3d}%  {self.done / 2**20:8.1f} MiB of {self.total / 2**20:.1f} MiB{self._rate()}")
                self.next_mark = percent + 10
        elif self.done >= self.next_mark * 8 * 2**20:
            self.log(f"  {self.done / 2**20:8.1f} MiB{self._rate()}")
            self.next_mark += 1

    def _rate(self) -> str:
        elapsed = time.monotonic() - self.started
        if elapsed <= 0:
            return ""
        return f"  ({(self.done - self.start_bytes) / 2**20 / elapsed:.1f} MiB/s)"


def _transfer(url: str, part: Path, timeout: float, log: Callable[[str], None]) -> None:
    """One attempt: append the missing bytes of ``url`` to ``part`` (resuming when it exists)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "cifarflow"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status == 206:
            log(f"resuming at byte {have}")
            mode = "ab"
            total = _total_size(response, have)
        else:
            if have:
                log("server ignored the range request: starting over")
            have, mode = 0, "wb"
            total = _total_size(response, 0)
        progress = _Progress(log, total, have)
        with open(part, mode) as handle:
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                handle.write(chunk)
                progress.update(len(chunk))
    if total is not None and part.stat().st_size < total:
        raise ConnectionError(f"transfer ended early: {part.stat().st_size} of {total} bytes")


def _total_size(response, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return int(length) + offset if length is not None else None


def download_url(
    url: str,
    dest: Path,
    algorithm: str,
    expected: str,
    *,
    retries: int = 5,
    timeout: float = 30.0,
    backoff: float = 2.0,
    log: Callable[[str], None] = print,
) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming and retrying, then verify and rename."""
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            log(f"downloading {url} (attempt {attempt} of {retries})")
            _transfer(url, part, timeout, log)
            break
        except urllib.error.HTTPError as error:
            if error.code == 416:  # the .part is already complete (or larger than the file)
                log("server reports nothing left to fetch; verifying what we have")
                break
            if error.code in NO_RETRY_HTTP:
                raise DownloadError(f"download failed: {url} answered HTTP {error.code} {error.reason}") from None
            failure = f"HTTP {error.code} {error.reason}"
        except urllib.error.URLError as error:
            if _is_offline_error(error):
                raise DownloadError(
                    f"cannot reach {url} ({error.reason}): no network? Download the archive elsewhere and run "
                    "with --config archive=PATH/TO/ARCHIVE archive_sha256=SHA256 (or archive_md5=MD5)"
                ) from None
            failure = str(error.reason)
        except (ConnectionError, TimeoutError, socket.timeout, OSError) as error:
            failure = f"{type(error).__name__}: {error}"
        if attempt == retries:
            raise DownloadError(f"download of {url} failed after {retries} attempts: {failure}")
        wait = backoff * 2 ** (attempt - 1)
        log(f"attempt {attempt} failed ({failure}); retrying in {wait:.0f} s")
        time.sleep(wait)
    _verify_and_move(part, dest, algorithm, expected, log)


def copy_local(source: Path, dest: Path, algorithm: str, expected: str, log: Callable[[str], None] = print) -> None:
    """Verify a local archive and copy it to ``dest`` (a copy, not a link: the workflow's time stamps on its
    own file must not reach the user's original, nor theirs ours)."""
    if not source.is_file():
        raise DownloadError(f"local archive {source} does not exist")
    part = dest.with_name(dest.name + ".part")
    part.unlink(missing_ok=True)
    shutil.copyfile(source, part)
    log(f"copied {source}")
    _verify_and_move(part, dest, algorithm, expected, log)


def _verify_and_move(part: Path, dest: Path, algorithm: str, expected: str, log: Callable[[str], None]) -> None:
    try:
        verify_checksum(part, algorithm, expected)
    except ChecksumError as error:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{error}; the file was removed, nothing was kept") from None
    os.replace(part, dest)
    log(f"verified {algorithm} {expected}; saved {dest}")


def fetch_archive(
    source: str,
    dest: Path,
    md5: str | None = None,
    sha256: str | None = None,
    log: Callable[[str], None] = print,
    **download_options,
) -> None:
    """Fetch ``source`` (URL or local path) to ``dest``, verified against the given checksum."""
    algorithm, expected = parse_checksum(md5, sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if is_url(source):
        download_url(source, dest, algorithm, expected, log=log, **download_options)
    else:
        copy_local(Path(source), dest, algorithm, expected, log=log)
