"""The examples users copy first: every YAML file parses, CI files pass their vendors' schemas,
the systemd units verify, and the unit runs the command README's install steps create."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.helpers import REPO

EXAMPLES = REPO / "examples"
CI_SCHEMAS = {EXAMPLES / "ci" / "github" / "virt-reconcile.yml": "vendor.github-workflows",
              EXAMPLES / "ci" / "github" / "fleet-matrix.yml": "vendor.github-workflows",
              EXAMPLES / "ci" / "gitlab" / ".gitlab-ci.yml": "vendor.gitlab-ci"}


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yml", ".yaml")),
                         ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_yaml_parses(path):
    assert list(YAML(typ="safe").load_all(path.read_text())), path


@pytest.mark.parametrize("path", sorted(CI_SCHEMAS), ids=lambda p: p.name)
def test_ci_examples_pass_the_vendor_schema(path):
    tool = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run([str(tool), "--builtin-schema", CI_SCHEMAS[path], str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("unit", ["systemd/virt-reconcile-drift", "pull/virt-reconcile-pull"])
def test_systemd_units_verify_and_use_the_installed_command(tmp_path, unit):
    service = (EXAMPLES / f"{unit}.service").read_text()
    command = re.search(r"^ExecStart=(\S+)", service, re.M).group(1)
    readme = (REPO / "README.md").read_text()
    venv = re.search(r"python3 -m venv --system-site-packages (/[\w/.-]+)", readme).group(1)
    assert command == f"{venv}/bin/virt-reconcile", (command, venv)     # what README's install makes
    assert re.search(r"^ExecStartPre=/", service, re.M), "a failed git pull must fail the run"
    assert re.search(r"^TimeoutStartSec=", service, re.M)
    # verify with the command where this machine has it
    name = Path(unit).name
    (tmp_path / f"{name}.service").write_text(service.replace(command, str(Path(sys.executable).parent / "virt-reconcile")))
    shutil.copy(EXAMPLES / f"{unit}.timer", tmp_path)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / f"{name}.service"),
                           str(tmp_path / f"{name}.timer")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


@pytest.mark.parametrize("name", ["quickstart", "fleet", "uefi-tpm", "server", "bridged", "virtiofs", "windows", "desktop", "gpu-passthrough",
                                  "cloud-init", "lan-bridge", "dual-stack", "lvm-pool", "nfs-pool", "iscsi-chap", "pull"])
def test_example_manifests_validate(name):
    from reconciler import pipeline
    manifest = pipeline.load([EXAMPLES / name])
    assert manifest.items
