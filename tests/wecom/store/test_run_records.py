"""The rights judgement as the run rows carry it: a snapshot run is judged against the previous one's row
(withheld counts and records seen), and only the run that first loses a group asks for an alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from wecom.status.view import rights_view
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import LoadResult
from wecom.store.run_records import RunRecord, RunRecords

CORP = "wwrights"
MEMBERS = 30
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def runs(target_engine: Engine) -> RunRecords:
    loader = DirectoryLoader(target_engine)
    loader.ensure_schema()
    return loader.runs


def snapshot(runs: RunRecords, number: int, lacking_contact: int) -> tuple[LoadResult, dict]:
    """Record snapshot run ``number`` in which ``lacking_contact`` of 30 members carried no contact field,
    as the load does: judged against the newest earlier snapshot's row, in the load's transaction."""
    observed = T0 + timedelta(hours=number)
    run = RunRecord(
        dag_id="wecom_directory_sync",
        run_id=f"r{number}",
        corp_id=CORP,
        observed_at=observed,
        departments_seen=6,
        users_seen=MEMBERS,
        withheld={"member_contact": lacking_contact} if lacking_contact else {},
    )
    result = LoadResult(status="success", plans={}, rows_written=0, message="")
    with runs.engine.begin() as conn:
        last = runs.last_snapshot(conn, {"corp_id": CORP, "dag_id": run.dag_id, "run_id": run.run_id})
        runs.record_result(conn, run, result, observed, observed + timedelta(minutes=1), last=last)
    return result, runs.get(run.dag_id, run.run_id)


def judged(runs: RunRecords, lacking: list[int]) -> list[tuple[str | None, list[str], str]]:
    """(``degraded`` column, groups newly lost: an alert each, status-page label) per snapshot."""
    out = []
    for number, lacking_contact in enumerate(lacking, start=1):
        result, row = snapshot(runs, number, lacking_contact)
        out.append((row["degraded"], result.newly_degraded, rights_view(row).label))
    return out


def test_a_group_one_member_lacked_is_lost_when_no_member_carries_it_alerting_once(runs: RunRecords) -> None:
    """29 of 30 members readable, then 0 of 30 twice (degraded, one alert), then 29 of 30 again (recovered)."""
    assert judged(runs, [1, MEMBERS, MEMBERS, 1]) == [
        (None, [], "full"),
        ("member_contact", ["member_contact"], "DEGRADED"),
        ("member_contact", [], "DEGRADED"),
        (None, [], "full"),
    ]


def test_a_deployment_that_never_read_the_group_stays_limited(runs: RunRecords) -> None:
    assert judged(runs, [MEMBERS, MEMBERS]) == [(None, [], "limited"), (None, [], "limited")]


def test_a_member_who_hides_their_details_degrades_nothing(runs: RunRecords) -> None:
    assert judged(runs, [0, 1]) == [(None, [], "full"), (None, [], "full")]
