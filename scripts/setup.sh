#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for virt-reconcile: system packages, /dev/kvm access,
# libvirt daemons, and a Python venv in .venv with the project installed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base ovmf swtpm
      swtpm-tools libxml2-utils python3-venv python3-libvirt iproute2 make virtinst)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's usual /dev/kvm access: without it libvirtd re-probes QEMU on every lookup (~45 s a define).
if [ -e /dev/kvm ]; then
  getent group kvm >/dev/null || groupadd --system kvm
  chgrp kvm /dev/kvm
  chmod 0660 /dev/kvm
  id -nG libvirt-qemu 2>/dev/null | grep -qw kvm || usermod -aG kvm libvirt-qemu
fi

# No systemd here: start the daemons ourselves when they are not running.
pgrep -x virtlogd >/dev/null || virtlogd -d
if ! pgrep -x libvirtd >/dev/null; then
  libvirtd -d
fi
for _ in $(seq 1 100); do
  virsh -q -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.1
done
virsh -q -c qemu:///system version >/dev/null || { echo "setup: libvirtd did not come up" >&2; exit 1; }

# The venv sees Debian's python3-libvirt (built against the daemon's own libvirt).
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import reconciler, pytest, lxml" 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  touch .venv/.installed
fi
.venv/bin/python -c "import libvirt; print('setup: libvirt', libvirt.getVersion())"
