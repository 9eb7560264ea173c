"""Rule 2 on real definitions: guests made by virt-install, networks and pools written from
libvirt's documented formats are defined by hand, adopted, planned (no changes), changed in one
harmless field and applied. libvirt's saved definition before and after (secure XML) may differ
only in that field: every other element and attribute is compared."""
from __future__ import annotations

import re
import shlex
import subprocess
import uuid

import libvirt
import pytest
from lxml import etree

from reconciler.identity import OWNER_NS
from tests.integration.conftest import IMAGES
from tests.integration.corpus import GUESTS, NETWORKS, POOLS

pytestmark = pytest.mark.libvirtd

SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
# libvirt's runtime figures of a pool, not part of its definition
RUNTIME = ("/pool/capacity", "/pool/allocation", "/pool/available")


def flat(xml: str) -> dict[str, str]:
    """Every element's text and every attribute, by path; our owner marker left out."""
    root = etree.fromstring(xml.encode())
    tree = root.getroottree()
    out = {}
    for el in root.iter():
        if not isinstance(el.tag, str) or any(etree.QName(a).namespace == OWNER_NS for a in [el, *el.iterancestors()]):
            continue
        path = tree.getpath(el)
        if path.startswith(RUNTIME):
            continue
        out[f"{path}#text"] = (el.text or "").strip()
        for key, value in el.attrib.items():
            out[f"{path}/@{key}"] = value
    return out


def changed(before: str, after: str) -> set[str]:
    a, b = flat(before), flat(after)
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def adopt_all(env, kind: str, names: list[str]) -> None:
    for name in names:
        done = env.run("adopt", f"{kind}/{name}", str(env.dir), "--out", str(env.dir / f"{kind}-{name}.yaml"))
        assert done.returncode == 0, done.stderr


def edit_file(env, kind: str, name: str, old: str, new: str) -> None:
    path = env.dir / f"{kind}-{name}.yaml"
    text = path.read_text()
    assert re.search(old, text), (old, text)
    path.write_text(re.sub(old, new, text, count=1))


def set_spec(env, kind: str, name: str, key: str, value) -> None:
    """Change one spec field of an adopted manifest, as a person would (the rest as adopt wrote it)."""
    from ruamel.yaml import YAML
    path = env.dir / f"{kind}-{name}.yaml"
    yaml = YAML()
    doc = yaml.load(path.read_text())
    doc["spec"][key] = value
    with path.open("w") as out:
        yaml.dump(doc, out)


@pytest.fixture
def corpus(env):
    """The test's image directory (disk images, kernel, media), a host bridge and the Host."""
    img = IMAGES / f"{env.prefix}-img"
    img.mkdir()
    for name in ("vmlinuz", "initrd.img", "media.iso"):
        (img / name).write_bytes(b"")
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(img / "floppy.img"), "1440K"], check=True)
    bridge = f"{env.prefix}br"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    env.write(f'kind: Host\nmetadata: {{name: local}}\nspec: {{uri: "qemu:///system", instance: {env.prefix}-i}}\n',
              "host.yaml")
    yield {"IMG": str(img), "BR": bridge, "P": env.prefix}
    subprocess.run(["ip", "link", "del", bridge], check=False)


def test_virt_install_guests_keep_everything_but_the_changed_field(env, corpus):
    env.write(f"kind: Network\nmetadata: {{name: {env.prefix}-net}}\nspec: {{forward: isolated, autostart: false}}\n",
              "net.yaml")
    env.converge()
    names = []
    for short, args in GUESTS:
        name = env.name(f"g-{short}")
        disk = f"{corpus['IMG']}/{short}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "16M"], check=True)
        args = shlex.split(args.format(disk=disk, NET=env.name("net"), **corpus))
        base = {"--memory": "256", "--vcpus": "1", "--network": "none", "--osinfo": "detect=on,require=off"}
        cmd = ["virt-install", "--connect", "qemu:///system", "--print-xml", "--import", "--noautoconsole",
               "--name", name] + [x for opt, v in base.items() if opt not in args for x in (opt, v)] + args
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, (short, done.stderr)
        env.conn.defineXMLFlags(done.stdout, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        names.append(name)
    assert len(names) >= 30
    adopt_all(env, "Guest", names)
    code, doc = env.plan("--show-unmanaged")
    assert code == 0, [c["address"] for c in doc["changes"]]
    unmanaged = {address.rsplit("/", 1)[1]: parts for address, parts in doc["unmanaged"].items()}
    assert "devices/audio" in unmanaged[env.name("g-uefi")] and "devices/tpm" not in unmanaged[env.name("g-tpm")]
    assert "firmware: efi" in (env.dir / f"Guest-{env.name('g-uefi')}.yaml").read_text()     # declared now
    assert "tpm:" in (env.dir / f"Guest-{env.name('g-tpm')}.yaml").read_text()
    vncpass = (env.dir / f"Guest-{env.name('g-vncpass')}.yaml").read_text()
    assert "keymap: de" in vncpass and "password" not in vncpass and "s3cret" not in vncpass   # never adopted
    spice = (env.dir / f"Guest-{env.name('g-spice')}.yaml").read_text()
    assert "type: spice" in spice and "model: qxl" in spice and "spice_agent: true" in spice, spice
    status = env.run("status", str(env.dir), "--show-unmanaged")
    assert "not managed (kept as they are): " in status.stdout and "devices/audio" in status.stdout
    before = {n: env.conn.lookupByName(n).XMLDesc(SECURE) for n in names}
    for name in names:
        edit_file(env, "Guest", name, r"current: 256MiB", "current: 192MiB")
    env.converge()
    after = {n: env.conn.lookupByName(n).XMLDesc(SECURE) for n in names}
    kept = {n: changed(before[n], after[n]) for n in names}
    assert {n: c for n, c in kept.items() if c != {"/domain/currentMemory#text"}} == {}
    assert "passwd='s3cret'" in after[env.name("g-vncpass")]


def test_documented_networks_and_pools_keep_everything_but_the_changed_field(env, corpus):
    octet, hexa = env.subnet.network_address.packed[1], env.prefix[-2:]
    values = corpus | {"SUB": f"10.{octet}", "H": hexa, "UUID": str(uuid.uuid4())}
    nets = []
    for short, xml in NETWORKS:
        net = env.conn.networkDefineXML(xml.format(**values))
        net.create()
        nets.append(net.name())
    pools = []
    for short, xml in POOLS:
        pool = env.conn.storagePoolDefineXML(xml.format(**values), 0)
        pool.build(0)
        pool.create(0)
        pools.append(pool.name())
    adopt_all(env, "Network", nets)
    adopt_all(env, "StoragePool", pools)
    code, doc = env.plan()
    assert code == 0, [c["address"] for c in doc["changes"]]
    before = {n: env.conn.networkLookupByName(n).XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) for n in nets}
    before |= {p: env.conn.storagePoolLookupByName(p).XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE) for p in pools}
    expected = {}
    for name in nets:
        if name == env.name("hb"):            # a host bridge's network has no MTU of its own: autostart only
            set_spec(env, "Network", name, "autostart", True)
            expected[name] = set()
        elif "mtu: 1400" in (env.dir / f"Network-{name}.yaml").read_text():
            set_spec(env, "Network", name, "mtu", 1450)
            expected[name] = {"/network/mtu/@size"}
        else:
            set_spec(env, "Network", name, "mtu", 1450)
            expected[name] = {"/network/mtu/@size", "/network/mtu#text"}
    for name in pools:
        edit_file(env, "StoragePool", name, r"path: ([^,}\n]+)", r"path: \1-moved")
        expected[name] = {"/pool/target/path#text"}
    env.converge()
    after = {n: env.conn.networkLookupByName(n).XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) for n in nets}
    after |= {p: env.conn.storagePoolLookupByName(p).XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE) for p in pools}
    kept = {n: changed(before[n], after[n]) for n in nets + pools}
    assert {n: c for n, c in kept.items() if c != expected[n]} == {}
    assert len(nets) >= 10 and len(pools) >= 5


GUEST = """\
kind: Guest
metadata: {name: P-vm}
spec:
  state: shutoff
  vcpus: 1
  memory: 64MiB
  cpu: {mode: host-passthrough}
  graphics: {type: vnc, listen: 127.0.0.1}
  disks: [{path: IMG/a.qcow2}, {path: IMG/b.qcow2}]
"""


def test_a_field_removed_from_the_manifest_is_reset_and_one_never_stated_is_never_changed(env, corpus):
    img = corpus["IMG"]
    for disk in ("a", "b"):
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", f"{img}/{disk}.qcow2", "1M"], check=True)
    env.write(GUEST.replace("IMG", img), "guest.yaml")
    env.converge()
    dom = env.conn.lookupByName(env.name("vm"))
    # by hand: a channel and a third disk (never stated), a CPU topology (inside a managed element)
    xml = dom.XMLDesc(SECURE).replace("</devices>", "<channel type='unix'><target type='virtio' "
                                      "name='org.qemu.guest_agent.0'/></channel><disk type='file' device='disk'>"
                                      f"<source file='{img}/c.img'/><target dev='vdz' bus='virtio'/></disk></devices>")
    xml = xml.replace("<cpu mode='host-passthrough' check='none' migratable='on'/>",
                      "<cpu mode='host-passthrough' check='none' migratable='on'><topology sockets='1' dies='1' "
                      "cores='1' threads='1'/></cpu>")
    env.conn.defineXML(xml)
    # the manifest drops cpu, graphics and disk b
    env.write(GUEST.replace("IMG", img).replace("  cpu: {mode: host-passthrough}\n", "")
              .replace("  graphics: {type: vnc, listen: 127.0.0.1}\n", "")
              .replace(f", {{path: {img}/b.qcow2}}", ""), "guest.yaml")
    code, doc = env.plan()
    paths = {c["path"] for a in doc["changes"] for c in a["changes"]}
    assert code == 2 and paths == {"cpu.mode", "graphics", "disks[vdb]"}, paths
    env.converge()
    after = dom.XMLDesc(SECURE)
    root = etree.fromstring(after.encode())
    assert root.find("cpu").get("mode") in (None, "custom")                             # libvirt's default
    assert root.find("cpu/topology").get("threads") == "1"                               # never stated: kept
    assert root.find("devices/graphics[@type='vnc']") is None                           # reset: removed
    assert [t.get("dev") for t in root.findall("devices/disk/target")] == ["vda", "vdz"]  # vdb gone, vdz kept
    assert root.find("devices/channel[@type='unix']") is not None                        # never stated: kept
    # the disk list declared whole: vdz goes too; the channel (another kind) stays
    env.write((env.dir / "guest.yaml").read_text().replace("  state: shutoff\n", "  state: shutoff\n  exclusive: [disks]\n"),
              "guest.yaml")
    env.converge()
    root = etree.fromstring(dom.XMLDesc(SECURE).encode())
    assert [t.get("dev") for t in root.findall("devices/disk/target")] == ["vda"]
    assert root.find("devices/channel[@type='unix']") is not None
