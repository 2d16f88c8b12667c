"""Where a run's staged files live, free of the data libraries: the run spool, the company context,
the DAG glue and the dag-processor handle staged paths without loading pandas, Arrow or orjson
(``wecom.store.staging`` reads and writes the files themselves)."""

from __future__ import annotations

import re
from typing import Any, Protocol

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class StagePath(Protocol):
    """What staging needs of a path: ``pathlib.Path`` and ``ObjectStoragePath`` both qualify."""

    def __truediv__(self, other: str) -> StagePath: ...
    def open(self, mode: str = "r", **kwargs: Any) -> Any: ...
    def exists(self) -> bool: ...
    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None: ...


def run_folder(root: StagePath, corp_id: str, dag_id: str, run_id: str) -> StagePath:
    """``<root>/<corp>/<dag>/<run>``: one folder per run, so a rerun overwrites only its own files."""
    folder = root
    for part in (corp_id, dag_id, run_id):
        folder = folder / _UNSAFE.sub("_", part)
    return folder


def ensure_dir(path: StagePath) -> StagePath:
    """Create ``path`` (a no-op on object stores, which have no folders)."""
    path.mkdir(parents=True, exist_ok=True)
    return path
