"""Which Hosts a run covers: --host NAME, --selector on the Hosts' labels (pipeline.HostChoice)."""
from __future__ import annotations

import pytest

from reconciler import pipeline
from reconciler.errors import ReconcilerError
from tests.helpers import write

HOSTS = """\
kind: Host
metadata: {name: kvm1, labels: {site: ber, role: web}}
spec: {uri: "qemu+ssh://root@kvm1/system"}
---
kind: Host
metadata: {name: kvm2, labels: {site: ber, role: db}}
spec: {uri: "qemu+ssh://root@kvm2/system"}
---
kind: Host
metadata: {name: kvm3, labels: {site: muc, canary: "yes"}}
spec: {uri: "qemu+ssh://root@kvm3/system"}
"""


@pytest.fixture
def manifest(tmp_path):
    return pipeline.load([write(tmp_path, "hosts.yaml", HOSTS)])


@pytest.mark.parametrize("selector, hosts", [
    ("site=ber", ["kvm1", "kvm2"]),
    ("site==ber,role!=web", ["kvm2"]),
    ("canary", ["kvm3"]),
    ("!canary", ["kvm1", "kvm2"]),
    ("site=muc, canary=yes", ["kvm3"]),
    ("role!=db", ["kvm1", "kvm3"]),
])
def test_a_selector_picks_hosts_by_their_labels(manifest, selector, hosts):
    assert list(pipeline.hosts_of(manifest, pipeline.HostChoice(None, selector))) == hosts


def test_host_and_selector_together_and_alone(manifest):
    assert list(pipeline.hosts_of(manifest, pipeline.HostChoice("kvm2", "site=ber"))) == ["kvm2"]
    assert list(pipeline.hosts_of(manifest, "kvm1")) == ["kvm1"]
    assert list(pipeline.hosts_of(manifest, None)) == ["kvm1", "kvm2", "kvm3"]


@pytest.mark.parametrize("choice, message", [
    (pipeline.HostChoice(None, "site=par"), "--selector 'site=par' matches no Host"),
    (pipeline.HostChoice("kvm3", "site=ber"), "matches no Host in the manifests (--host 'kvm3')"),
    (pipeline.HostChoice(None, "site=ber,,role=db"), "'' is not a label term"),
    (pipeline.HostChoice(None, "site=b er"), "'site=b er' is not a label term"),
    (pipeline.HostChoice("kvm9"), "--host 'kvm9': no such Host"),
])
def test_a_selector_or_host_that_picks_nothing_is_an_error(manifest, choice, message):
    with pytest.raises(ReconcilerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pipeline.hosts_of(manifest, choice)
