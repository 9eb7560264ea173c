#!/usr/bin/env bash
# Set up a fresh Debian 12 (apt) or SUSE (zypper) machine (as root) for virt-reconcile: system
# packages, /dev/kvm access, libvirt daemons, and a Python venv in .venv with the project installed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian/Ubuntu (apt) or SUSE (zypper): the same parts under each distribution's names. On SUSE
# the system Python is 3.6, so the venv uses python3.11 and pip builds libvirt-python against the
# host's libvirt (libvirt-devel); on Debian the venv sees python3-libvirt.
if command -v apt-get >/dev/null 2>&1; then
  QEMU_USER=libvirt-qemu
  PKGS=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base ovmf swtpm
        swtpm-tools libxml2-utils python3-venv python3-libvirt iproute2 make virtinst systemd curl
        nodejs parted lvm2 e2fsprogs tgt libiscsi-bin libvirt-daemon-driver-storage-iscsi-direct
        qemu-block-extra ifupdown bridge-utils openssh-server bindfs)
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
  PYTHON=/usr/bin/python3
  VENV_FLAGS=(--system-site-packages)
elif command -v zypper >/dev/null 2>&1; then
  QEMU_USER=qemu
  PKGS=(libvirt-daemon-qemu libvirt-client qemu-x86 qemu-tools qemu-ovmf-x86_64 swtpm dnsmasq
        libxml2-tools python311 python311-pip python311-devel libvirt-devel gcc pkg-config iproute2
        make virt-install parted lvm2 e2fsprogs)
  missing=()
  for p in "${PKGS[@]}"; do
    rpm -q "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    zypper --non-interactive install --no-recommends "${missing[@]}"
  fi
  PYTHON=python3.11
  VENV_FLAGS=()
else
  echo "setup: neither apt-get nor zypper found; install libvirt, QEMU and Python >= 3.11 yourself" >&2
  exit 1
fi

# Debian's usual /dev/kvm access: without it libvirtd re-probes QEMU on every lookup (~45 s a define).
if [ -e /dev/kvm ]; then
  getent group kvm >/dev/null || groupadd --system kvm
  chgrp kvm /dev/kvm
  chmod 0660 /dev/kvm
  if id "$QEMU_USER" >/dev/null 2>&1; then
    id -nG "$QEMU_USER" | grep -qw kvm || usermod -aG kvm "$QEMU_USER"
  fi
fi

# No systemd here: start the daemons ourselves when they are not running.
pgrep -x virtlogd >/dev/null || virtlogd -d
# A storage backend installed after libvirtd started (iscsi-direct) is loaded by a restart.
if pgrep -x libvirtd >/dev/null && virsh -q -c qemu:///system pool-capabilities 2>/dev/null \
    | grep -q "type='iscsi-direct' supported='no'" && \
    [ -e /usr/lib/x86_64-linux-gnu/libvirt/storage-backend/libvirt_storage_backend_iscsi-direct.so ]; then
  echo "setup: restarting libvirtd to load the iscsi-direct storage backend"
  pkill -x libvirtd
  for _ in $(seq 1 100); do pgrep -x libvirtd >/dev/null || break; sleep 0.1; done
fi
if ! pgrep -x libvirtd >/dev/null; then
  libvirtd -d
fi
for _ in $(seq 1 100); do
  virsh -q -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.1
done
virsh -q -c qemu:///system version >/dev/null || { echo "setup: libvirtd did not come up" >&2; exit 1; }

# Debian: the venv sees python3-libvirt (built against the daemon's own libvirt).
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv "${VENV_FLAGS[@]}" .venv
fi
if ! .venv/bin/python -c "import reconciler, pytest, lxml" 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  touch .venv/.installed
fi
.venv/bin/python -c "import libvirt; print('setup: libvirt', libvirt.getVersion())"
