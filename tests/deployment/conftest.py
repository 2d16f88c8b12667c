"""The `deployment` marker, registered beside the suite that uses it."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deployment: starts the real Airflow components as `make airflow` does")
