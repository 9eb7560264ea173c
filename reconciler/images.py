"""Images a new volume is filled from: fetched (a local file, or a URL to a temporary file),
checked against their SHA-256, and probed for their format and virtual size (qcow2's header, or
a raw file's length), all before anything is uploaded."""
from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import tempfile
from typing import Callable, Iterator

from .errors import ReconcilerError

CHUNK = 256 * 1024          # libvirt's stream messages carry 256 KiB at most: faster than larger writes
QCOW2_MAGIC = b"QFI\xfb"
TIMEOUT = 60                # seconds a URL may go silent


class ImageError(ReconcilerError):
    """An image cannot be used: unreadable, unreachable, another checksum or format, too big."""


@contextlib.contextmanager
def fetched(image: dict, note: Callable[[str], None]) -> Iterator[str]:
    """A local file holding `image` ({path} or {url}, with sha256), checked; a download is
    deleted afterwards."""
    if "path" in image:
        _check(image["path"], image.get("sha256"))
        yield image["path"]
        return
    handle, tmp = tempfile.mkstemp(prefix="virt-reconcile-image-")
    try:
        with os.fdopen(handle, "wb") as out:
            _download(image["url"], out, note)
        _check(tmp, image["sha256"], image["url"])
        yield tmp
    finally:
        os.unlink(tmp)


def _download(url: str, out, note: Callable[[str], None]) -> None:
    try:
        import urllib.request     # only images fetched over http(s) need it
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:      # noqa: S310 (http(s) only: models.py)
            total, done, shown = int(response.headers.get("Content-Length") or 0), 0, -1
            while chunk := response.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                shown = _progress(note, "downloading", done, total, shown)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot download {url}: {getattr(exc, 'reason', None) or exc}") from None


def _check(path: str, sha256: str | None, shown_as: str | None = None) -> None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as src:
            while chunk := src.read(1024 * 1024):
                digest.update(chunk)
    except OSError as exc:
        raise ImageError(f"cannot read the image {path}: {exc.strerror}") from None
    if sha256 and digest.hexdigest() != sha256.lower():
        raise ImageError(f"the image {shown_as or path} has SHA-256 {digest.hexdigest()}, not {sha256.lower()} "
                         "as the manifest says: nothing was uploaded")


def probe(path: str) -> tuple[str, int]:
    """(format, virtual size in bytes) of an image: qcow2 from its header, else raw."""
    with open(path, "rb") as src:
        header = src.read(32)
    if header[:4] == QCOW2_MAGIC and len(header) >= 32:
        return "qcow2", struct.unpack(">Q", header[24:32])[0]
    return "raw", os.path.getsize(path)


def chunks(path: str, note: Callable[[str], None]) -> Iterator[bytes]:
    """The file's bytes in stream-sized pieces, telling `note` how far it got."""
    total, done, shown = os.path.getsize(path), 0, -1
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            done += len(chunk)
            shown = _progress(note, "uploading", done, total, shown)
            yield chunk


def _progress(note: Callable[[str], None], verb: str, done: int, total: int, shown: int) -> int:
    """Tell `note` at each further tenth (or every 64 MiB when the size is unknown)."""
    step = done * 10 // total if total else done // (64 * 1024 * 1024)
    if step > shown:
        mib = done / 1024 / 1024
        note(f"{verb} {step * 10}% ({mib:.0f} MiB)" if total else f"{verb} {mib:.0f} MiB")
    return max(step, shown)
