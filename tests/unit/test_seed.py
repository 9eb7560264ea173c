"""cloud-init NoCloud seeds (seed.py): the documents of a Volume's cloud_init, the ISO made from
them (the same bytes for the same documents, label cidata, files read back with pycdlib), and
how a seed volume is planned (its capacity is the ISO's size; other documents: a live recreate)."""
from __future__ import annotations

import io
import json
import time

import pycdlib
import pytest

from reconciler import desired, pipeline, planners, seed
from reconciler.live import HostFacts, HostState, LiveObject
from reconciler.models import CloudInit
from reconciler.ownership import Record
from tests.helpers import write

DOCS = {"user-data": "#cloud-config\nhostname: web\n", "meta-data": "instance-id: cloud/seed.iso\n",
        "network-config": "version: 2\nethernets: {eth0: {dhcp4: true}}\n"}


def test_the_same_documents_give_the_same_bytes_whatever_the_clock_and_time_zone(monkeypatch):
    first = seed._build.__wrapped__(tuple(sorted(DOCS.items())))
    time.sleep(1.1)                                # another second: pycdlib would stamp it
    monkeypatch.setenv("TZ", "Asia/Kolkata")       # another offset from UTC: pycdlib would record it
    time.tzset()
    try:
        second = seed._build.__wrapped__(tuple(sorted(DOCS.items())))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert first == second
    assert seed.build(DOCS) == first and seed.size(DOCS) == len(first)
    assert len(first) % 2048 == 0
    assert seed.build(DOCS | {"user-data": "#cloud-config\nhostname: db\n"}) != first
    assert time.time() > seed.EPOCH + 1e6          # the real clock is back


def test_the_files_read_back_with_pycdlib_under_every_name_and_the_label_is_cidata(tmp_path):
    image = tmp_path / "seed.iso"
    image.write_bytes(seed.build(DOCS))
    assert seed.read(str(image)) == ("cidata", DOCS)
    iso = pycdlib.PyCdlib()
    iso.open(str(image))
    try:
        assert iso.has_rock_ridge() and iso.has_joliet()
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        for name, text in DOCS.items():
            for where in ({"rr_path": "/" + name}, {"joliet_path": "/" + name}, {"iso_path": seed.FILES[name]}):
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, **where)
                assert out.getvalue().decode() == text, where
    finally:
        iso.close()


def test_without_network_config_the_seed_has_two_files():
    docs = seed.documents(CloudInit(user_data="#!/bin/sh\necho hi\n"), "cloud/seed.iso")
    assert docs == {"user-data": "#!/bin/sh\necho hi\n", "meta-data": "instance-id: cloud/seed.iso\n"}
    assert seed.read(seed.build(docs)) == ("cidata", docs)


def test_documents_are_yaml_that_yaml_1_1_reads_back_as_written():
    yaml = pytest.importorskip("yaml")            # PyYAML: what cloud-init reads them with
    user = {"users": [{"name": "ops", "lock_passwd": False, "ssh_authorized_keys": ["ssh-ed25519 AAAA ops"]}],
            "write_files": [{"path": "/etc/motd", "content": "line one\nline two\n", "permissions": "0644"}],
            "ntp": {"enabled": "yes", "servers": ["on", "off", "1:2", "2024-01-01", "~"]}, "runcmd": [["echo", "x"]]}
    meta = {"instance-id": "i-1", "local-hostname": "web"}
    net = {"ethernets": {"eth0": {"match": {"macaddress": "52:54:00:00:00:01"}, "addresses": ["10.0.0.5/24"]}}}
    docs = seed.documents(CloudInit(user_data=user, meta_data=meta, network_config=net), "cloud/seed.iso")
    assert docs["user-data"].startswith("#cloud-config\n")
    assert yaml.safe_load(docs["user-data"]) == user
    assert "content: |\n" in docs["user-data"]        # several lines: a block, readable in the guest
    assert yaml.safe_load(docs["meta-data"]) == meta
    assert yaml.safe_load(docs["network-config"]) == {"version": 2} | net
    assert seed.digests(docs)["user-data"].startswith("sha256:")


SEED = """\
    kind: Host
    metadata: {name: local}
    spec: {uri: "qemu:///system"}
    ---
    kind: StoragePool
    metadata: {name: cloud}
    spec: {path: /srv/cloud}
    ---
    kind: Volume
    metadata: {name: seed.iso}
    spec:
      pool: cloud
      cloud_init:
        user_data: {hostname: HOSTNAME}
        meta_data: {local-hostname: web}
    """


def _desired(tmp_path, hostname: str):
    path = write(tmp_path, "m.yaml", SEED.replace("HOSTNAME", hostname))
    manifest = pipeline.load([path])
    item = manifest.get("local", "Volume", "cloud/seed.iso")
    state = HostState("local", "qemu:///system", HostFacts({"qemu"}), {}, {"cloud"})
    return desired.build(item, manifest, state)


def test_a_seed_is_planned_from_its_documents_and_remade_live_when_they_change(tmp_path):
    want = _desired(tmp_path, "web")
    docs = want.make["seed"]
    assert docs["meta-data"] == "instance-id: cloud/seed.iso\nlocal-hostname: web\n"
    assert want.fields["capacity"] == seed.size(docs) and want.fields["format"] == "raw"
    assert want.make["capacity"] == seed.size(docs) and "image" not in want.make
    record = json.loads(want.owner["record"])
    assert record["seed"] == seed.digests(docs) and "hostname" not in want.owner["record"]

    created = planners.volume(want, None, None)
    assert created.action == "create" and created.impact == "live"
    assert {c.path for c in created.changes} >= {"capacity", "cloud_init.user_data", "cloud_init.meta_data"}

    live = LiveObject("Volume", "cloud/seed.iso", want.xml)     # as made: the same capacity and format
    applied = Record("default", want.hash, content=record)
    assert planners.volume(want, live, applied) is None

    other = _desired(tmp_path, "db")
    action = planners.volume(other, live, applied)
    assert action.action == "recreate" and action.impact == "live", action
    assert [(c.path, c.impact) for c in action.changes] == [("cloud_init.user_data", "live")]
    assert "holds no guest data" in action.reason and "first boot" in action.reason
    assert [op.name.value for op in action.ops] == ["delete_volume", "create_volume", "record"]
    assert action.ops[1].args["seed"]["user-data"] == "#cloud-config\nhostname: db\n"


def test_user_data_text_of_several_lines_loads_as_written(tmp_path):
    """Newlines and tabs are refused in every value but a seed's documents (yamlsafe.TEXT_PATHS)."""
    script = "#!/bin/sh\nprintf 'a\tb'\necho done\n"
    block = "".join(f"          {line}\n" for line in script.splitlines())
    path = write(tmp_path, "m.yaml", SEED.replace("user_data: {hostname: HOSTNAME}\n", "user_data: |\n" + block))
    assert "\t" in path.read_text()
    spec = pipeline.load([path]).get("local", "Volume", "cloud/seed.iso").spec
    assert spec.cloud_init.user_data == script
    assert seed.documents(spec.cloud_init, "cloud/seed.iso")["user-data"] == script
