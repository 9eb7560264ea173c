"""A cloud-init NoCloud seed on the real daemon: the volume is an ISO labelled cidata whose files
read back as the manifest's documents, a running guest has it as a cdrom, other user-data is a
live recreate of the seed alone, and the seed adopted back is a plain raw volume that plans empty."""
from __future__ import annotations

import os
import subprocess

import libvirt
import pytest
from ruamel.yaml import YAML

from reconciler import seed
from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

POOL = """---
kind: StoragePool
metadata: {name: P-cloud}
spec: {path: /var/lib/libvirt/images/P-cloud}
"""

SEED = """---
kind: Volume
metadata: {name: seed.iso}
spec:
  pool: P-cloud
  cloud_init:
    user_data:
      hostname: HOSTNAME
      users: [{name: ops, ssh_authorized_keys: ["ssh-ed25519 AAAAC3Nza ops@example"]}]
      write_files: [{path: /etc/motd, content: "line one\\nline two\\n", permissions: "0644"}]
    meta_data: {local-hostname: cvm}
    network_config:
      ethernets: {lan: {match: {macaddress: "52:54:00:c1:00:09"}, dhcp4: true}}
"""

GUEST = small_guest("P-cvm", "  disks:\n    - {volume: P-cloud/seed.iso, device: cdrom}\n"
                             "  interfaces: [{network: P-net, mac: \"52:54:00:c1:00:09\"}]\n")
NET = "---\nkind: Network\nmetadata: {name: P-net}\nspec: {forward: isolated, autostart: false}\n"


def _files(path: str) -> tuple[str, dict]:
    """The seed's label and files as pycdlib reads them, checked against xorriso's listing."""
    listing = subprocess.run(["xorriso", "-indev", path, "-ls", "/"], capture_output=True, text=True, check=True)
    label, files = seed.read(path)
    assert sorted(line.strip("'") for line in listing.stdout.split()) == sorted(files), listing.stdout
    return label, files


def _yaml(text: str):
    return YAML(typ="safe").load(text)


def test_a_seed_volume_boots_a_guest_and_is_remade_live_when_its_user_data_changes(env, tmp_path):
    text = GUEST + NET + POOL + SEED
    env.write(text.replace("HOSTNAME", "first"))
    code, doc = env.plan()
    assert code == 2
    (vol,) = [c for c in doc["changes"] if c["kind"] == "Volume"]
    assert vol["action"] == "create" and vol["impact"] == "live"
    assert {"cloud_init.user_data", "cloud_init.meta_data", "cloud_init.network_config"} <= {
        c["path"] for c in vol["changes"]}
    env.converge()
    assert env.run("drift", str(env.dir)).returncode == 0      # libvirt's `iso` format reads as raw

    path = f"/var/lib/libvirt/images/{env.prefix}-cloud/seed.iso"
    label, files = _files(path)
    assert label == "cidata" and sorted(files) == ["meta-data", "network-config", "user-data"]
    user = files["user-data"]
    assert user.startswith("#cloud-config\n")
    assert _yaml(user) == {"hostname": "first", "users": [{"name": "ops", "ssh_authorized_keys": [
        "ssh-ed25519 AAAAC3Nza ops@example"]}], "write_files": [{"path": "/etc/motd", "content":
                                                                  "line one\nline two\n", "permissions": "0644"}]}
    assert files["meta-data"] == f"instance-id: {env.prefix}-cloud/seed.iso\nlocal-hostname: cvm\n"
    assert _yaml(files["network-config"]) == {"version": 2, "ethernets": {"lan": {
        "match": {"macaddress": "52:54:00:c1:00:09"}, "dhcp4": True}}}
    conn = env.conn
    vol_obj = conn.storagePoolLookupByName(env.name("cloud")).storageVolLookupByName("seed.iso")
    assert vol_obj.info()[1] == os.path.getsize(path)          # capacity: the ISO's size

    dom = env.lookup("cvm")
    assert dom.isActive()
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "device='cdrom'" in xml and f"pool='{env.name('cloud')}' volume='seed.iso'" in xml, xml
    assert dom.blockInfo("sda")[0] == os.path.getsize(path)   # QEMU opened the seed
    guest_id = dom.ID()

    # other user-data: the seed alone is made again, live (it holds no guest data)
    env.write(text.replace("HOSTNAME", "second"))
    code, doc = env.plan()
    assert code == 2
    assert [(c["kind"], c["action"], c["impact"]) for c in doc["changes"]] == [("Volume", "recreate", "live")], doc
    (vol,) = doc["changes"]
    assert [(c["path"], c["impact"]) for c in vol["changes"]] == [("cloud_init.user_data", "live")]
    assert "holds no guest data" in vol["reason"] and "first boot" in vol["reason"]
    shown = env.run("plan", str(env.dir))
    assert "cloud_init.user_data" in shown.stdout and "hostname: second" not in shown.stdout, shown.stdout
    saved = tmp_path / "seed.plan"
    assert env.run("plan", str(env.dir), "--out", str(saved)).returncode == 2
    assert "hostname: second" in saved.read_text()             # a saved plan holds the documents (README)
    done = env.run("apply", "--plan", str(saved))              # without --allow-destroy
    assert done.returncode == 0, done.stdout + done.stderr
    code, doc = env.plan()
    assert code == 0, doc
    label, files = _files(path)
    assert _yaml(files["user-data"])["hostname"] == "second"
    assert files["meta-data"] == f"instance-id: {env.prefix}-cloud/seed.iso\nlocal-hostname: cvm\n"
    assert env.lookup("cvm").isActive() and env.lookup("cvm").ID() == guest_id

    # adopted back, the seed is a plain raw volume (cloud_init is not read from an ISO) and plans empty
    assert env.run("forget", f"Volume/{env.name('cloud')}/seed.iso", str(env.dir)).returncode == 0
    env.write(GUEST.split("---\n")[0] + NET + POOL)             # the guest leaves while its disk is adopted
    done = env.run("adopt", f"Volume/{env.name('cloud')}/seed.iso", str(env.dir))
    assert done.returncode == 0, done.stdout + done.stderr
    adopted = next(env.dir.glob("volume-*.yaml")).read_text()
    assert "cloud_init" not in adopted and "raw" in adopted, adopted
    env.write("---\n" + GUEST.split("---\n", 1)[1], "guest.yaml")
    code, doc = env.plan()
    assert code == 0, doc
    assert seed.read(path)[1]["user-data"] == files["user-data"]     # untouched
