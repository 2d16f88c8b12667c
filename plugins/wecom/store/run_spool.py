"""Failed runs the target database could not take, kept until it can.

When the database dies during a load (or is down when a run fails), the
failure callback cannot write the run's ``wecom_sync_runs`` row, and the status
page would go on showing the previous success as the latest state. The row is
kept instead as one JSON file under the company's staging folder, and the next
task that reaches the database (``ensure_schema`` of any run) writes it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime

from wecom.store.loader import DirectoryLoader
from wecom.store.run_records import RunRecord
from wecom.store.sql import parse_db_time
from wecom.store.stage_path import StagePath, ensure_dir, run_folder

log = logging.getLogger(__name__)

_TIME_FIELDS = ("logical_date", "observed_at", "started_at")


class RunSpool:
    """One folder of pending failed runs; a file is named by its run, so a rerun replaces its own."""

    def __init__(self, folder: StagePath) -> None:
        self.folder = folder

    @classmethod
    def of_company(cls, staging_root: StagePath, corp_id: str) -> RunSpool:
        """The company's spool, in its own folder of the staging area."""
        return cls(run_folder(staging_root, corp_id, "failed-runs", "pending"))

    def keep(self, run: RunRecord, message: str, finished_at: datetime) -> None:
        ensure_dir(self.folder)
        values = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(run).items()}
        record = {"run": values, "message": message, "finished_at": finished_at.isoformat()}
        with (self.folder / _file_name(run)).open("w", encoding="utf-8") as handle:
            json.dump(record, handle, ensure_ascii=False, sort_keys=True)

    def replay(self, loader: DirectoryLoader) -> int:
        """Record every kept run as failed, unless its row already tells a later ending; returns how many
        were written. Raises (keeping the files) while the database is still unreachable."""
        if not self.folder.exists():
            return 0
        written = 0
        for path in sorted(self.folder.iterdir(), key=str):
            with path.open("r", encoding="utf-8") as handle:
                record = json.load(handle)
            values = record["run"] | {k: _time(record["run"][k]) for k in _TIME_FIELDS}
            run, finished_at = RunRecord(**values), _time(record["finished_at"])
            existing = loader.runs.get(run.dag_id, run.run_id)
            ended = parse_db_time(existing["finished_at"]) if existing else None
            if ended is None or ended < finished_at:
                loader.runs.record_failed(run, record["message"], finished_at=finished_at)
                written += 1
                log.info("recorded run %s of %s as failed (kept while the database was down)", run.run_id, run.dag_id)
            path.unlink()
        return written


def _file_name(run: RunRecord) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{run.dag_id}__{run.run_id}") + ".json"


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
