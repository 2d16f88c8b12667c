"""Stored callbacks and table views shared by the callback tests (and the sensor and trigger tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pandas as pd
from sqlalchemy import Connection, Engine, text

from wecom.api.client import WeComClient
from wecom.callbacks.apply import DeltaApplier, DeltaResult
from wecom.callbacks.events_table import NewEvent, store_events
from wecom.callbacks.parse import ParsedEvent, parse_event
from wecom.directory.transform import transform
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import LoadOptions
from wecom.store.run_records import RunRecord

CORP = "wwdeltas"
SECRET = "deltas-secret-value"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
_runs = count()


def at(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp())


def store_event(
    bind: Engine | Connection,
    corp_id: str,
    parsed: ParsedEvent,
    raw_message: str,
    received_at: datetime,
    *,
    conn_id: str | None = None,
) -> bool:
    """Store one event as the receiver does (``store_events``), in its own transaction on an engine or in
    the connection's; True if new, False if a redelivery."""
    event = NewEvent(corp_id, conn_id, parsed, raw_message, received_at)
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            return store_events(connection, [event])[0]
    return store_events(bind, [event])[0]


def event_xml(change_type: str, create_time: int, corp: str = CORP, **fields: object) -> str:
    body = "".join(f"<{tag}><![CDATA[{value}]]></{tag}>" for tag, value in fields.items())
    return (
        f"<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[{change_type}]]></ChangeType>{body}</xml>"
    )


def store(engine: Engine, change_type: str, seconds: float, corp: str = CORP, **fields: object) -> None:
    xml = event_xml(change_type, at(seconds), corp, **fields)
    store_event(engine, corp, parse_event(xml), xml, datetime.now(UTC))


def apply(engine: Engine, corp: str = CORP, client: WeComClient | None = None, **options: object) -> DeltaResult:
    run = RunRecord(dag_id="wecom_callback_deltas", run_id=f"run{next(_runs)}", corp_id=corp, kind="delta")
    return DeltaApplier(engine, client, **options).apply(run)


def rows(engine: Engine, sql: str, **params: object) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def statuses(engine: Engine) -> dict[str, int]:
    return dict(rows(engine, "SELECT status, COUNT(*) FROM wecom_callback_events GROUP BY status"))


def truthy(value: object) -> bool:
    """A BOOLEAN as either dialect returns it."""
    return bool(value)


def directory(engine: Engine, corp: str = CORP) -> dict[str, list[tuple]]:
    """Every current table of a corp, without bookkeeping columns."""
    tables = {
        "wecom_users": "userid, name, position, status, main_department_id, row_hash, is_deleted",
        "wecom_departments": "department_id, name, parent_id, path, depth, row_hash, is_deleted",
        "wecom_user_departments": "userid, department_id, sort_order, is_leader, is_main, row_hash",
        "wecom_department_leaders": "department_id, userid",
        "wecom_user_direct_leaders": "userid, leader_userid",
        "wecom_department_closure": "ancestor_id, descendant_id, distance",
    }
    return {t: sorted(rows(engine, f"SELECT {c} FROM {t} WHERE corp_id = :c", c=corp)) for t, c in tables.items()}


def seed_tree(engine: Engine, corp: str = CORP) -> None:
    """Root 1 with 2 and 3 under it, 4 under 2."""
    store(engine, "create_party", 1, corp, Id=1, Name="Root", ParentId=0, Order=1)
    store(engine, "create_party", 2, corp, Id=2, Name="Sales", ParentId=1, Order=2)
    store(engine, "create_party", 3, corp, Id=3, Name="R&D", ParentId=1, Order=3)
    store(engine, "create_party", 4, corp, Id=4, Name="East", ParentId=2, Order=4)


def load_snapshot(
    engine: Engine,
    departments: list[dict],
    users: list[dict],
    seconds: float,
    run_id: str,
    corp: str = CORP,
    tops: tuple[int, ...] = (),
) -> None:
    """A complete full-sync snapshot of raw WeCom answers, observed at ``T0 + seconds`` (``tops``: a
    department scope's top departments)."""
    snapshot = transform(pd.DataFrame(departments), pd.DataFrame(users), corp, tops=tops)
    DirectoryLoader(engine).load_snapshot(
        {f"wecom_{name}": [frame] for name, frame in vars(snapshot).items()},
        run=RunRecord("wecom_directory_sync", run_id, corp),
        observed_at=T0 + timedelta(seconds=seconds),
        complete=True,
        options=LoadOptions(allow_mass_delete=True),
    )


def full_sync(engine: Engine, client: WeComClient, seconds: float, run_id: str = "full1") -> None:
    """What a full sync with ``client``'s rights stores: every department and member, fetched one by one."""
    departments = client.department_list()
    userids = sorted({row["userid"] for row in client.user_list_id()})
    load_snapshot(engine, departments, [client.user_get(u) for u in userids], seconds, run_id)
