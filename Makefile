# Two commands for a newcomer on a fresh Debian 12 machine (as root):
#   make demo   set up, then plan and apply examples/quickstart on the local libvirt, and show
#               that a second plan has nothing to do
#   make test   set up, then run every test (unit tests and integration tests on the real libvirtd)
PY := .venv/bin/python
VR := .venv/bin/virt-reconcile
QUICKSTART := examples/quickstart

.PHONY: setup demo test unit integration bench demo-clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VR) validate $(QUICKSTART)
	$(VR) plan $(QUICKSTART) || [ $$? -eq 2 ]
	$(VR) apply $(QUICKSTART) --auto-approve
	@echo "--- second plan: must find nothing to do (exit 0) ---"
	$(VR) plan $(QUICKSTART)

test: setup
	$(PY) -m pytest -q tests

unit: setup
	$(PY) -m pytest -q tests/unit

integration: setup
	$(PY) -m pytest -q tests/integration

bench: setup
	$(PY) bench/plan_apply.py

demo-clean:
	bash scripts/demo-clean.sh
