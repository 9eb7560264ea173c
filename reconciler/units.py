"""Sizes with units ("512MiB", "20G", 1048576) to bytes, and back for display."""
from __future__ import annotations

import re

_UNITS = {
    "": 1, "b": 1, "bytes": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
    "p": 1024**5, "pib": 1024**5, "pb": 1000**5,
    "e": 1024**6, "eib": 1024**6, "eb": 1000**6,
}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


def parse_size(value: object) -> int:
    """Return a size in bytes from an int or a string like '512MiB'; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a string like '512MiB'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match and len(match.group(1)) > 30:
            raise ValueError(f"{value[:40]!r}... is far larger than any size libvirt takes")
        if match and match.group(2).lower() in _UNITS:
            return int(match.group(1)) * _UNITS[match.group(2).lower()]
    raise ValueError(f"{value!r} is not a size: use bytes or a number with KiB, MiB, GiB, TiB or PiB")


def libvirt_size(text: str, unit: str | None) -> int:
    """Bytes from a libvirt size element (text plus its unit attribute, default KiB)."""
    return int(text.strip()) * _UNITS[(unit or "KiB").lower()]


def human_size(nbytes: int) -> str:
    """The largest binary unit that shows the size exactly: 268435456 -> '256MiB'."""
    for unit, factor in (("EiB", 1024**6), ("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3),
                         ("MiB", 1024**2), ("KiB", 1024)):
        if nbytes and nbytes % factor == 0:
            return f"{nbytes // factor}{unit}"
    return f"{nbytes}B"
