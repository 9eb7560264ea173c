"""Carry what libvirt owns from a guest's saved definition into a redefinition (pure XML work).

Redefining from the manifest alone would let libvirt re-allocate PCI addresses (renaming guest
NICs), drop controllers, and lose other applications' metadata. So before each redefine:
- managed devices (disks by target, NICs by MAC) keep their <address>;
- devices the manifest does not manage (controllers, memballoon, video, input, channels...) and
  top-level elements it does not render are kept as they are;
- <metadata> children of other namespaces are kept beside our owner marker.
"""
from __future__ import annotations

import copy

from lxml import etree

from .fields import parse
from .identity import OWNER_NS

MANAGED_DEVICES = {"disk", "interface", "graphics", "serial", "console", "emulator"}


def _device_key(el) -> str | None:
    if el.tag == "disk":
        found = el.xpath("target/@dev")
    elif el.tag == "interface":
        found = [m.lower() for m in el.xpath("mac/@address")]
    else:
        return None
    return f"{el.tag}:{found[0]}" if found else None


def domain(rendered: str, saved: str | None) -> str:
    """`rendered` with the addresses, unmanaged devices and foreign metadata of `saved`."""
    if not saved:
        return rendered
    new, old = parse(rendered), parse(saved)
    new_devices = new.find("devices")
    old_devices = old.find("devices")
    if old_devices is not None:
        addresses = {}
        for el in old_devices:
            key = _device_key(el)
            if key and el.find("address") is not None:
                addresses[key] = el.find("address")
        for el in new_devices:
            key = _device_key(el)
            if key in addresses and el.find("address") is None:
                el.append(copy.deepcopy(addresses[key]))
        for el in old_devices:
            if isinstance(el.tag, str) and el.tag not in MANAGED_DEVICES:
                new_devices.append(copy.deepcopy(el))
    rendered_tags = {el.tag for el in new}
    for el in old:
        if isinstance(el.tag, str) and el.tag not in rendered_tags:
            new.append(copy.deepcopy(el))
    old_meta, new_meta = old.find("metadata"), new.find("metadata")
    if old_meta is not None and new_meta is not None:
        for el in old_meta:
            if isinstance(el.tag, str) and etree.QName(el).namespace != OWNER_NS:
                new_meta.append(copy.deepcopy(el))
    return etree.tostring(new, encoding="unicode")
