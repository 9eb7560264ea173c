"""Adoption: a manifest written from an object's live definition (pure).

Adopt writes every field the models can express and leaves out what they cannot (a disk on a bus
the model lacks, VNC without a listen address, a NIC model...): what is left out is not managed,
so apply keeps it exactly as it is (edit.py, diff.py). Only a value a required field cannot hold
(a machine type without PCI, a network forward mode or pool type not modelled) refuses adoption."""
from __future__ import annotations

import io

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from . import fields, models
from .errors import ReconcilerError
from .units import human_size


def _valid(model, value: dict) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def _guest(values: dict, root, active: bool, autostart: bool) -> dict:
    spec: dict = {"state": "running" if active else "shutoff", "autostart": autostart, "type": values["type"],
                  "vcpus": {"current": values["vcpus"]["current"], "max": values["vcpus"]["max"]},
                  "memory": {"current": human_size(values["memory"]["current"]),
                             "max": human_size(values["memory"]["max"])},
                  "machine": values["machine"], "boot": values["boot"], "console": values["console"]}
    if values["cpu"]["mode"] in ("host-model", "host-passthrough", "maximum"):
        spec["cpu"] = {"mode": values["cpu"]["mode"]}
    spec["disks"] = []
    for target, d in values["disks"].items():
        disk = {"device": d["device"], "bus": d["bus"], "target": target, "format": d["format"] or "raw",
                "readonly": d["readonly"]}
        if d["volume"]:
            disk["volume"] = d["volume"]
        elif d["path"]:
            disk["path"] = d["path"]
        if _valid(models.Disk, disk):
            spec["disks"].append(disk)
    spec["interfaces"] = [nic for nic in ({"network": n["network"], "mac": mac, "model": n["model"] or "rtl8139"}
                                          for mac, n in values["interfaces"].items())
                          if _valid(models.Interface, nic)]
    for gtype, g in values["graphics"].items():
        graphics = {"type": gtype, "listen": g["listen"] or root.xpath("string(devices/graphics/listen/@address)")}
        if g["port"] and g["port"] > 0 and root.xpath("devices/graphics[@autoport='no']"):
            graphics["port"] = g["port"]
        if graphics["listen"] and _valid(models.Graphics, graphics):
            spec["graphics"] = graphics
    return spec


def _network(values: dict, root, active: bool, autostart: bool) -> dict:
    spec: dict = {"forward": values["forward"], "autostart": autostart}
    if values["bridge"]:
        spec["bridge"] = values["bridge"]
    if values["mtu"]:
        spec["mtu"] = values["mtu"]
    if values["ipv4"]:
        ipv4: dict = {"address": values["ipv4"]}
        hosts = [host for host in ({"mac": mac, "ip": h["ip"], **({"name": h["name"]} if h["name"] else {})}
                                   for mac, h in values["dhcp_hosts"].items()) if _valid(models.DhcpHost, host)]
        if values["dhcp_range"] or hosts:
            ipv4["dhcp"] = {"hosts": hosts}
            if values["dhcp_range"]:
                ipv4["dhcp"]["range"] = values["dhcp_range"].split("-")
        spec["ipv4"] = ipv4
    return spec


def _pool(values: dict, root, active: bool, autostart: bool) -> dict:
    return {"type": values["type"], "path": values["path"], "autostart": autostart}


def _volume(values: dict, root, active: bool, autostart: bool) -> dict:
    return {"capacity": human_size(values["capacity"]), "format": values["format"]}


_SPECS = {"Guest": _guest, "Network": _network, "StoragePool": _pool, "Volume": _volume}


# Fields a manifest cannot leave out (the model gives them a default): a live value the model
# cannot hold would be changed by the first apply, so such an object is not adopted.
_REQUIRED = {"Guest": ("machine",), "Network": ("forward",), "StoragePool": ("type",), "Volume": ("format",)}


def document(kind: str, name: str, host: str, xml: str, active: bool, autostart: bool) -> dict:
    """The manifest document of a live object (ReconcilerError when a required field cannot be
    written); what it leaves out stays unmanaged."""
    root = fields.parse(xml)
    spec = _SPECS[kind](fields.read(kind, root), root, active, autostart)
    meta = {"name": name, "host": host}
    if kind == "Volume":
        pool, _, meta["name"] = name.partition("/")
        spec = {"pool": pool, **spec}
    doc = {"kind": kind, "metadata": meta, "spec": spec}
    try:
        models.DOC_MODELS[kind].model_validate(doc)
    except ValidationError as exc:
        bad = {str(e["loc"][1]) for e in exc.errors() if len(e["loc"]) > 1 and e["loc"][0] == "spec"}
        fields_ = ", ".join(f"{f}={spec.get(f)!r}" for f in _REQUIRED[kind] if f in bad) or str(exc).splitlines()[0]
        raise ReconcilerError(f"{kind}/{name} cannot be adopted: the manifest cannot hold its {fields_}") from None
    return doc


def _quoted(value):
    """Quote strings with ':' (MACs) so every YAML parser reads them as strings."""
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    return DoubleQuotedScalarString(value) if isinstance(value, str) and ":" in value else value


def yaml_text(doc: dict) -> str:
    doc = _quoted(doc)
    out = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 4096
    yaml.dump(doc, out)
    return out.getvalue()
