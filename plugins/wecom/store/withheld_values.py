"""The load's side of "absent is not empty": stored values stand in for what WeCom withheld.

Runs inside the load's transaction, between the normalized files and the stage
tables, so what it reads is what the merge then compares against. The pure
rules (which bit means which field, how a row is filled) are in
``wecom.directory.withheld``; this module only reads the stored rows, once per
table and only when a batch needs them.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from wecom.directory.transform import TABLE_DTYPES
from wecom.directory.withheld import LINK_SETS, WITHHELD, carried_links, fill_withheld, withheld_owners
from wecom.store.sql import read_named_statements

log = logging.getLogger(__name__)

Batch = pd.DataFrame | pa.RecordBatch


class WithheldValues:
    """Completes one snapshot's batches, table by table in merge order (owners before their links)."""

    def __init__(self, conn: Connection, dialect: str, corp_id: str) -> None:
        self._conn = conn
        self._corp_id = corp_id
        self._sql = read_named_statements("merge/stored_values.sql", dialect)
        self._stored: dict[str, pd.DataFrame] = {}
        self._owners: dict[str, set[object]] = defaultdict(set)
        self.filled: Counter[str] = Counter()

    def complete(self, table: str, batches: Iterable[Batch]) -> Iterator[Batch]:
        """``batches`` without the ``withheld`` column, filled from the stored rows; for a link table, the
        stored links of owners whose answers withheld them replace whatever the snapshot derived."""
        sets = [(name, key) for name, (_, link_table, key) in LINK_SETS.items() if link_table == table]
        owners = {key: self._owners[name] for name, key in sets if self._owners[name]}
        for batch in batches:
            yield self._fill(table, _without_owners(_frame(batch, table), owners) if owners else batch)
        for name, _ in sets:
            if self._owners[name]:
                carried = carried_links(self._read(table), self._owners[name], name)
                self.filled[f"{name} kept"] += len(carried)
                yield carried

    def _fill(self, table: str, batch: Batch) -> Batch:
        if WITHHELD not in _columns(batch):
            return batch
        if isinstance(batch, pa.RecordBatch) and (len(batch) == 0 or pc.max(batch.column(WITHHELD)).as_py() == 0):
            return batch.drop_columns([WITHHELD])
        frame = _frame(batch, table)
        if not frame[WITHHELD].any():
            return frame.drop(columns=WITHHELD)
        for name, (owner_table, _, _) in LINK_SETS.items():
            if owner_table == table:
                self._owners[name].update(withheld_owners(frame, name).tolist())
        self.filled[table] += int(frame[WITHHELD].astype(bool).sum())
        return fill_withheld(frame, self._read(table), table)

    def _read(self, table: str) -> pd.DataFrame:
        if table not in self._stored:
            result = self._conn.execute(text(self._sql[table]), {"corp_id": self._corp_id})
            self._stored[table] = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        return self._stored[table]

    def log_summary(self) -> None:
        if self.filled:
            log.info(
                "kept stored values where WeCom withheld them: %s",
                ", ".join(f"{n} {what}" for what, n in sorted(self.filled.items())),
            )


def _columns(batch: Batch) -> list[str]:
    return list(batch.schema.names) if isinstance(batch, pa.RecordBatch) else list(batch.columns)


def _frame(batch: Batch, table: str) -> pd.DataFrame:
    """A batch as pandas with the transform's dtypes, which the row hash depends on."""
    frame = batch.to_pandas() if isinstance(batch, pa.RecordBatch) else batch
    dtypes = TABLE_DTYPES[table] | ({WITHHELD: "int64"} if WITHHELD in frame.columns else {})
    return frame.astype({c: t for c, t in dtypes.items() if c in frame.columns})


def _without_owners(frame: pd.DataFrame, owners: dict[str, set[object]]) -> pd.DataFrame:
    for key, keys in owners.items():
        frame = frame[~frame[key].isin(list(keys))]
    return frame
