#!/usr/bin/env bash
# Remove what `make demo` created on the local libvirt (the quickstart's objects only).
set -u
virsh -q destroy web-1 2>/dev/null; virsh -q undefine web-1 --nvram 2>/dev/null
for v in web-1-root.qcow2 web-1-data.qcow2; do virsh -q vol-delete "$v" --pool demo-pool 2>/dev/null; done
virsh -q pool-destroy demo-pool 2>/dev/null; virsh -q pool-delete demo-pool 2>/dev/null; virsh -q pool-undefine demo-pool 2>/dev/null
virsh -q net-destroy demo-net 2>/dev/null; virsh -q net-undefine demo-net 2>/dev/null
echo "quickstart objects removed"
