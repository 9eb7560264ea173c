"""`python -m reconciler` runs the virt-reconcile command."""
from .cli import app

app(prog_name="virt-reconcile")
