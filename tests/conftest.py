"""pytest options shared by all tests."""
from __future__ import annotations

import os

import pytest

# the wide manifests' SPICE password (tests/data/manifests/wide: password: {env: VR_WIDE_PASSWORD})
os.environ.setdefault("VR_WIDE_PASSWORD", "wide-secret")
os.environ.setdefault("DESKTOP_SPICE_PASSWORD", "desktop-secret")     # examples/desktop
os.environ.setdefault("SAN_CHAP_PASSWORD", "san-secret")                # examples/iscsi-chap


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite golden XML files")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")
