"""What a load adds for the data platform, as ``bench.sync_bench`` times it (its ``publish`` column).

``WeComLoadOperator`` turns the load's result into the asset events of the changed tables, and the
OpenLineage listener turns the operator's datasets into a COMPLETE event with every table's schema
and row count and writes it through the transport (the file transport here) from a forked process
the task waits for, as the listener does. What is not in it is Airflow registering the events in
its metadata database, on the API server after the task reported success: a few rows per table,
whatever the company's size.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import make_url

from wecom.datasets import asset_events, source_datasets, table_datasets, table_location
from wecom.lineage import operator_lineage
from wecom.store.plan import LoadResult


def preload() -> None:
    """Import what a task process has loaded before its task runs (the listener imports it): not timed."""
    import airflow.providers.openlineage.extractors  # noqa: F401, PLC0415
    import openlineage.client  # noqa: F401, PLC0415


def publish(result: LoadResult, manifest: dict[str, Any], corp_id: str, db_url: str, lineage_file: Path) -> int:
    """The asset events and the OpenLineage COMPLETE event of one load; returns how many asset events."""
    from openlineage.client import OpenLineageClient  # noqa: PLC0415
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState  # noqa: PLC0415
    from openlineage.client.transport.file import FileConfig, FileTransport  # noqa: PLC0415
    from openlineage.client.uuid import generate_new_uuid  # noqa: PLC0415

    url = make_url(db_url)
    connection = {"conn_id": "bench", "host": url.host or url.database, "schema": url.database, "port": url.port}
    location = table_location(SimpleNamespace(conn_type=url.get_backend_name(), extra_dejson={}, **connection))
    changed = result.changed_tables()
    events = asset_events(location, changed, {"company": "default", "corp_id": corp_id})
    lineage = operator_lineage(source_datasets(corp_id, manifest), table_datasets(location, changed))
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=str(generate_new_uuid())),
        job=Job(namespace="bench", name="sync_bench.load"),
        producer="https://github.com/wecom-airflow-sync/bench",
        inputs=lineage.inputs,
        outputs=lineage.outputs,
    )
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(lineage_file), append=True)))
    pid = os.fork()
    if pid == 0:  # the listener's child: emit, then leave without running the parent's cleanup
        try:
            client.emit(event)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return len(events)
