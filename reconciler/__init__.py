"""virt-reconcile: declarative, GitOps-style reconciler for libvirt."""

__version__ = "0.1.0"
