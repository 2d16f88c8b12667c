"""What a DAG run told the data platform: its asset events (the metadata database) and its OpenLineage
events (the file transport), and where the test's target tables live as datasets."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine

from tests.support.airflow_runner import target_connection
from wecom.datasets import TableLocation, table_location


def lineage_env(path: Path) -> dict[str, str]:
    """Environment for a DAG run whose OpenLineage events go to ``path``, one JSON event per line."""
    transport = {"type": "file", "log_file_path": str(path), "append": True}
    return {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport), "AIRFLOW__OPENLINEAGE__NAMESPACE": "tests"}


def completed(path: Path, dag_id: str, task_id: str) -> list[dict[str, Any]]:
    """The COMPLETE events of one task (oldest first) in an OpenLineage file transport's output."""
    job = f"{dag_id}.{task_id}"
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == job]


def asset_events(run_id: str) -> dict[str, dict[str, Any]]:
    """The asset events a DAG run emitted, by asset URI (this process's metadata database); each asset's
    name is its URI, which is checked here."""
    database = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    with closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT a.name, a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE e.source_run_id = ? ORDER BY e.id",
            (run_id,),
        ).fetchall()
    assert all(name == uri for name, uri, _ in rows), rows
    events = {uri: json.loads(extra) for _, uri, extra in rows}
    assert len(events) == len(rows), f"more than one event for a table: {rows}"
    return events


def location_of(engine: Engine) -> TableLocation:
    """Where the test's target tables live, from the connection the DAG runs are given."""
    fields = json.loads(target_connection(engine.url.render_as_string(hide_password=False)))
    return table_location(
        SimpleNamespace(
            conn_id="wecom_target_db",
            conn_type=fields["conn_type"],
            host=fields.get("host"),
            schema=fields.get("schema"),
            port=fields.get("port"),
            extra_dejson={},
        )
    )
