"""Staged files of one run: raw JSON lines from the API, normalized Parquet tables.

Tasks hand each other paths, never data (XCom stays small), and the paths may
point anywhere an ``ObjectStoragePath`` reaches (``file://`` by default,
``s3://``/``gs://`` in a cluster), so nothing assumes two tasks share a disk.
Functions here take any path object with ``/``, ``open`` and ``exists``:
``pathlib.Path`` in plain tests, ``ObjectStoragePath`` under Airflow.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from wecom.store.stage_path import StagePath

MANIFEST = "manifest.json"


DIGEST_MODULUS = 2**256
WRITE_BUFFER_BYTES = 1 << 20


class JsonLinesWriter:
    """Append records as JSON lines; counts what it wrote and keeps a digest of the set of records.

    The digest is the sum of every line's SHA-256 modulo 2**256 (a multiset
    hash), so it does not depend on the order records were written in: the
    concurrent walks write them in whatever order answers come back, and two
    extractions of an unchanged directory must still give the same digest.
    Keys are written sorted for the same reason. orjson, not the standard
    library: staging serializes every member once and parses it once more in
    the transform, and orjson does both several times faster. ``observe``, when
    given, sees every record as it is written (the extract tallies withheld fields).
    """

    def __init__(self, path: StagePath, observe: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.path = path
        self.count = 0
        self._sum = 0
        self._observe = observe
        self._file = path.open("wb")
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, record: dict[str, Any]) -> None:
        if self._observe is not None:
            self._observe(record)
        line = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        self._sum += int.from_bytes(hashlib.sha256(line).digest(), "big")
        self._pending.append(line)
        self._pending_bytes += len(line)
        self.count += 1
        if self._pending_bytes >= WRITE_BUFFER_BYTES:
            self._flush()

    def _flush(self) -> None:
        """One write per ~1 MiB: a file opened through ``ObjectStoragePath`` costs Airflow's tracking
        wrapper a lookup and a path rendering per call, which per line was most of the extract's CPU."""
        if self._pending:
            self._file.write(b"".join(self._pending))
            self._pending.clear()
            self._pending_bytes = 0

    @property
    def digest(self) -> str:
        """Hex digest of the records written so far, whatever their order."""
        return f"{self._sum % DIGEST_MODULUS:064x}"

    def write_many(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        self._flush()
        self._file.close()

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC around code that builds many objects but no reference cycles.

    Building a chunk of records with the GC on made parsing five times slower: each full
    collection rescans every dict already built. Nests: only the outermost pause re-enables.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def iter_json_lines(path: StagePath, chunksize: int = 50_000) -> Iterator[pd.DataFrame]:
    """Raw records in bounded chunks; values keep their JSON types, so ids like ``"007"`` stay text.

    Each frame is indexed by the records' line numbers in the file, counted from 0, so an error can
    name the staged line whatever chunk it is in. Lines are parsed with orjson, with the GC paused:
    on nested member records that is several times faster than ``pd.read_json(lines=True)``.
    """
    start = 0
    with path.open("rb") as handle:
        while lines := list(itertools.islice(handle, chunksize)):
            with gc_paused():
                records = [orjson.loads(line) for line in lines if line.strip()]
                if len(records) == len(lines):
                    index: pd.Index = pd.RangeIndex(start, start + len(lines))
                else:
                    index = pd.Index([start + i for i, line in enumerate(lines) if line.strip()])
                frame = pd.DataFrame.from_records(records, index=index) if records else None
            start += len(lines)
            if frame is not None:
                yield frame


def read_json_lines(path: StagePath) -> pd.DataFrame:
    """All raw records of a file as one frame (empty frame for an empty file)."""
    chunks = list(iter_json_lines(path))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()


def write_manifest(directory: StagePath, manifest: dict[str, Any]) -> None:
    write_json(directory / MANIFEST, manifest)


def write_json(path: StagePath, data: Any) -> None:
    """A small staged JSON document (a manifest, the ids that left the scope)."""
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2, sort_keys=True)


def read_json(path: StagePath) -> Any:
    with path.open("r", encoding="utf-8") as handle:
        return json.load(handle)


def write_table(path: StagePath, frame: pd.DataFrame) -> int:
    """Write one normalized table as Parquet; returns its row count."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with path.open("wb") as handle:
        pq.write_table(table, handle)
    return len(frame)


class TableWriter:
    """Appends frames of one table to one Parquet file, for tables built chunk by chunk.

    ``empty`` (the table's columns and dtypes, no rows) is written when no chunk
    came, so every table has a file with the right schema.
    """

    def __init__(self, path: StagePath, empty: pd.DataFrame) -> None:
        self.path = path
        self.rows = 0
        self._empty = empty
        self._handle: Any = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        schema = self._writer.schema if self._writer is not None else None
        table = pa.Table.from_pandas(frame, preserve_index=False, schema=schema)
        if self._writer is None:
            self._handle = self.path.open("wb")
            self._writer = pq.ParquetWriter(self._handle, table.schema)
        self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is None:
            self.write(self._empty)
        assert self._writer is not None
        self._writer.close()
        self._handle.close()


def read_table(path: StagePath, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet table, or only ``columns`` of it (what a check needs of a million-row table)."""
    with path.open("rb") as handle:
        return pq.read_table(handle, columns=columns).to_pandas()


def iter_table(path: StagePath, batch_rows: int = 50_000) -> Iterator[pa.RecordBatch]:
    """A Parquet table in bounded Arrow batches, so the loader's memory does not grow with the company."""
    with path.open("rb") as handle:
        parquet = pq.ParquetFile(handle)
        yield from parquet.iter_batches(batch_size=batch_rows)
