"""Every example a user copies applies on the real daemon and plans empty afterwards (its objects
renamed with the test's prefix, guests kept shut off, so nothing runs and nothing clashes)."""
from __future__ import annotations

import io

import pytest
from ruamel.yaml import YAML

from tests.helpers import REPO

pytestmark = pytest.mark.libvirtd

EXAMPLES = ["quickstart", "fleet", "uefi-tpm", "server", "bridged", "virtiofs", "windows", "desktop", "gpu-passthrough",
            "dual-stack"]


def _prefixed(doc: dict, prefix: str, subnet: str) -> dict:
    """One example document with every name it defines or refers to prefixed."""
    p = lambda name: f"{prefix}-{name}"          # noqa: E731
    kind, meta, spec = doc["kind"], doc["metadata"], doc.get("spec") or {}
    if kind == "Host":
        spec["instance"] = p("i")
        return doc
    meta["name"] = p(meta["name"])
    if kind == "StoragePool":
        spec["path"] = f"/var/lib/libvirt/images/{meta['name']}"
    if kind == "Volume":
        spec["pool"] = p(spec["pool"])
    if kind == "Network" and "ipv4" in spec:
        spec["ipv4"] = _subnet(spec["ipv4"], subnet)
    if kind == "Network" and spec.get("bridge") and spec.get("forward") != "bridge":
        spec["bridge"] = f"{prefix}b"
    guest = spec.get("template", spec) if kind == "GuestSet" else spec
    if kind == "GuestSet":
        spec["name"] = p(spec.get("name", doc["metadata"]["name"].removeprefix(prefix + "-") + "-{{ index }}"))
    if kind in ("Guest", "GuestSet", "GuestClass"):
        if "class" in guest:
            guest["class"] = p(guest["class"])
        guest["state"] = "shutoff"
        for disk in guest.get("disks", []):
            if "volume" in disk:
                pool, vol = disk["volume"].split("/")
                disk["volume"] = f"{p(pool)}/{p(vol)}"
        for nic in guest.get("interfaces", []):
            if "network" in nic:
                nic["network"] = p(nic["network"])
            if "ip" in nic:
                nic["ip"] = subnet + nic["ip"].rsplit(".", 1)[1]
            if "mac" in nic:
                nic["mac"] = _mac(nic["mac"])
    return doc


def _mac(mac: str) -> str:
    return "52:54:00:ee" + mac[11:]      # the examples' MACs, moved out of any real guest's way


def _subnet(ipv4: dict, subnet: str) -> dict:
    def move(addr: str) -> str:
        return subnet + addr.rsplit(".", 1)[1]
    ipv4["address"] = move(ipv4["address"].split("/")[0]) + "/24"
    dhcp = ipv4.get("dhcp") or {}
    if "range" in dhcp:
        dhcp["range"] = [move(a) for a in dhcp["range"]]
    for host in dhcp.get("hosts", []):
        host["ip"] = move(host["ip"])
        host["mac"] = _mac(host["mac"])
    return ipv4


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_applies_and_plans_empty(env, name):
    yaml = YAML(typ="safe")
    docs = []
    for path in sorted((REPO / "examples" / name).glob("*.yaml")):
        docs += [d for d in yaml.load_all(path.read_text()) if d]
    subnet = env.ip(0)[:-1]
    out = YAML()
    text = io.StringIO()
    out.dump_all([_prefixed(d, env.prefix, subnet) for d in docs], text)
    (env.dir / "example.yaml").write_text(text.getvalue())
    env.converge()
    names = [d.name() for d in env.conn.listAllDomains(0) if d.name().startswith(env.prefix)]
    assert names, name
