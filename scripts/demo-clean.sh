#!/usr/bin/env bash
# Remove what `make demo` created on the local libvirt (the quickstart's objects only).
set -u
cd "$(dirname "$0")/.."
VR=.venv/bin/virt-reconcile
# release the ownership records of the quickstart's pool and volume (kept in the inventory domain)
for o in Volume/demo-pool/web-1-root.qcow2 Volume/demo-pool/web-1-data.qcow2 StoragePool/demo-pool; do
  "$VR" forget "$o" examples/quickstart >/dev/null 2>&1
done
virsh -q destroy web-1 2>/dev/null; virsh -q undefine web-1 --nvram 2>/dev/null
for v in web-1-root.qcow2 web-1-data.qcow2; do virsh -q vol-delete "$v" --pool demo-pool 2>/dev/null; done
virsh -q pool-destroy demo-pool 2>/dev/null; virsh -q pool-delete demo-pool 2>/dev/null; virsh -q pool-undefine demo-pool 2>/dev/null
virsh -q net-destroy demo-net 2>/dev/null; virsh -q net-undefine demo-net 2>/dev/null
# the default instance's inventory domain goes too once it records nothing
if ! virsh -q dumpxml virt-reconcile-inventory-default 2>/dev/null | grep -q "<vr:object"; then
  virsh -q undefine virt-reconcile-inventory-default >/dev/null 2>&1
fi
echo "quickstart objects removed"
