"""A migrated target database of each dialect, and a simulator with a small company."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.wecom.callbacks.support import CORP, SECRET
from wecom.api.client import WeComClient
from wecom.store.loader import DirectoryLoader
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator


@pytest.fixture
def engine(target_engine: Engine) -> Engine:
    DirectoryLoader(target_engine).ensure_schema()
    return target_engine


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=3, members=30, departments=6), corp_id=CORP, secret=SECRET) as sim:
        yield sim


@pytest.fixture
def client(sim: RunningSimulator) -> Iterator[WeComClient]:
    with WeComClient(sim.base_url, CORP, SECRET, max_retries=0) as client:
        yield client
