"""pytest options shared by all tests."""
from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite golden XML files")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")
