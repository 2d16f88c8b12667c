"""Run conf validation and the freshness rule that makes backfills cost one extraction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wecom.errors import RunConfError
from wecom.run_options import RunConf, covering_snapshot

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_conf_defaults_and_known_keys() -> None:
    assert RunConf.from_conf(None) == RunConf()
    assert RunConf.from_conf({"dry_run": True, "force": True}) == RunConf(dry_run=True, force=True)


def test_unknown_keys_are_rejected_with_the_allowed_list() -> None:
    with pytest.raises(RunConfError, match="'dryrun'; allowed keys: allow_mass_delete, dry_run, force"):
        RunConf.from_conf({"dryrun": True})


def test_values_must_be_booleans() -> None:
    with pytest.raises(RunConfError, match="'force' must be true or false"):
        RunConf.from_conf({"force": "yes"})


@pytest.mark.parametrize(
    ("latest", "interval_end", "covered"),
    [
        (None, NOW - 24 * HOUR, False),  # nothing loaded yet
        (NOW - 2 * HOUR, NOW - 24 * HOUR, True),  # backfill of a past day after a newer snapshot
        (NOW - 25 * HOUR, NOW - 24 * HOUR, False),  # the snapshot predates the interval's end
        (NOW - 0.5 * HOUR, NOW, True),  # a manual run right after a sync
        (NOW - 2 * HOUR, NOW, False),  # the regular run: last snapshot is older than the window
    ],
)
def test_covering_snapshot(latest: datetime | None, interval_end: datetime, covered: bool) -> None:
    assert covering_snapshot(latest, interval_end, NOW, HOUR) is covered
