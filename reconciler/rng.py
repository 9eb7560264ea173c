"""Validate XML against libvirt's RelaxNG schemas in-process (what virt-xml-validate does)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree

from .kinds import KINDS

SCHEMA_DIR = Path("/usr/share/libvirt/schemas")


@lru_cache(maxsize=None)
def _schema(kind: str) -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMA_DIR / KINDS[kind].rng)))


def errors(kind: str, xml: str) -> list[str]:
    """Schema violations of `xml` as a document of `kind` ([] when valid; a kind that is no
    libvirt object, a host bridge, has no schema)."""
    if not KINDS[kind].rng:
        return []
    schema = _schema(kind)
    if schema.validate(etree.fromstring(xml.encode())):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
