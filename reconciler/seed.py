"""cloud-init NoCloud seeds: the documents of a Volume's `cloud_init` (user-data, meta-data and,
when given, network-config) and the ISO 9660 image cloud-init finds them on at first boot.

The image is made with pycdlib the way cloud-localds makes it (`genisoimage -volid cidata -joliet
-rock`: interchange level 1 names, Rock Ridge 1.09 and Joliet names `user-data`...), with every
timestamp fixed, so the same documents always give the same bytes: a plan knows the image's
size (the volume's capacity) and a digest of its documents (kept in the volume's record) without
carrying the image. Apply builds it again from the documents the plan holds (steps.py).

The documents are kept in clear text in saved plans (records keep their SHA-256): user-data holds
no secrets (a password as a hash, `passwd: $6$...`, and SSH public keys are fine)."""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import threading
import time
from functools import lru_cache
from typing import Any, Iterator, Mapping

import pycdlib
from ruamel.yaml import YAML

LABEL = "cidata"
# file name in the seed -> its ISO 9660 level-1 name (genisoimage's: upper case, '-' as '_', 8.3)
FILES = {"user-data": "/USER_DAT.;1", "meta-data": "/META_DAT.;1", "network-config": "/NETWORK_.;1"}
EPOCH = 946684800.0        # 2000-01-01 00:00:00 UTC: every timestamp of the image
USER_DATA_HEADERS = ("#cloud-config", "#!")


def _plain(value: Any) -> Any:
    """The manifest's values (yamlsafe's Map and Seq) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _literal(representer, text: str):
    """Text of several lines as a `|` block (a script in write_files or runcmd stays readable)."""
    return representer.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


def to_yaml(value: Mapping) -> str:
    """A mapping as YAML that cloud-init's PyYAML (YAML 1.1) reads back as the same values: keys
    sorted, no aliases, and strings 1.1 would take for something else (`yes`, `on`, `0644`)
    quoted."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.version = (1, 1)                 # quote what YAML 1.1 resolves as booleans or numbers
    yaml.representer.ignore_aliases = lambda *args: True
    yaml.representer.add_representer(str, _literal)
    out = io.StringIO()
    yaml.dump(_plain(value), out)
    text = out.getvalue()
    return text.removeprefix("%YAML 1.1\n").removeprefix("---\n")


def documents(cloud_init, name: str) -> dict[str, str]:
    """The seed's files and their text, from a Volume's `cloud_init` (models.CloudInit); `name`
    (pool/volume) is the default instance-id."""
    user = cloud_init.user_data
    user_text = user if isinstance(user, str) else "#cloud-config\n" + (to_yaml(user) if user else "")
    meta = {"instance-id": name} | _plain(cloud_init.meta_data)
    docs = {"user-data": user_text, "meta-data": to_yaml(meta)}
    if cloud_init.network_config is not None:
        docs["network-config"] = to_yaml({"version": 2} | _plain(cloud_init.network_config))
    return docs


def digests(docs: Mapping[str, str]) -> dict[str, str]:
    """What a volume's record keeps of its seed: each document's SHA-256."""
    return {name: "sha256:" + hashlib.sha256(text.encode()).hexdigest() for name, text in sorted(docs.items())}


class _FixedClock:
    """The `time` module as pycdlib sees it while an image is made: always EPOCH, in UTC."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def time() -> float:
        return EPOCH

    @staticmethod
    def localtime(seconds: float | None = None):
        return time.gmtime(EPOCH if seconds is None else seconds)


_CLOCKED = ("pycdlib", "headervd", "dates", "utils", "dr", "rockridge", "inode")
_lock = threading.Lock()


@contextlib.contextmanager
def _fixed_time() -> Iterator[None]:
    """pycdlib stamps records with time.time() in local time; no call takes a date, so its
    modules see a fixed clock while an image is made (one image at a time)."""
    modules = [getattr(pycdlib, name, None) for name in _CLOCKED]
    modules = [m for m in modules if m is not None and getattr(m, "time", None) is time]
    with _lock:
        for module in modules:
            module.time = _FixedClock()
        try:
            yield
        finally:
            for module in modules:
                module.time = time


def build(docs: Mapping[str, str]) -> bytes:
    """The seed's ISO image holding `docs` (file name -> text): the same bytes for the same docs."""
    return _build(tuple(sorted(docs.items())))


@lru_cache(maxsize=8)
def _build(docs: tuple[tuple[str, str], ...]) -> bytes:
    with _fixed_time():
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=1, vol_ident=LABEL, sys_ident="LINUX", joliet=3, rock_ridge="1.09")
        for name, text in docs:
            data = text.encode()
            iso.add_fp(io.BytesIO(data), len(data), FILES[name], rr_name=name, joliet_path="/" + name)
        out = io.BytesIO()
        iso.write_fp(out)
        iso.close()
    return out.getvalue()


def size(docs: Mapping[str, str]) -> int:
    """The image's size in bytes: the seed volume's capacity."""
    return len(build(docs))


@contextlib.contextmanager
def written(docs: Mapping[str, str]) -> Iterator[str]:
    """A temporary file holding the image (deleted afterwards), to upload like an image file."""
    handle, path = tempfile.mkstemp(prefix="virt-reconcile-seed-", suffix=".iso")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(build(docs))
        yield path
    finally:
        os.unlink(path)


def read(path_or_bytes: str | bytes) -> tuple[str, dict[str, str]]:
    """(volume label, {file name: text}) of a seed image, read back with pycdlib (tests, checks)."""
    iso = pycdlib.PyCdlib()
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb")
    try:
        iso.open_fp(src)
        label = iso.pvd.volume_identifier.decode().strip()
        found = {}
        for name in FILES:
            out = io.BytesIO()
            try:
                iso.get_file_from_iso_fp(out, rr_path="/" + name)
            except pycdlib.pycdlibexception.PyCdlibInvalidInput:
                continue
            found[name] = out.getvalue().decode()
        iso.close()
        return label, found
    finally:
        src.close()
