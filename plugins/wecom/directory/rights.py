"""What a run could not see, named in WeCom's terms, and whether that is less than before.

WeCom withholds whole groups of fields by the caller's rights (see
``wecom.directory.withheld`` for how the tables keep their values). A run
records how many records lacked each group; when a group that the previous
snapshot could read goes missing (an egress IP moved, a secret replaced), the
run still succeeds but is *degraded* until the rights come back, and says once
what changed and what to do.

Rights take a group from a caller for every record alike, while a single
member may lack a group by their own doing (hidden or never entered contact
details), so the judgement goes by shares of records, not by "any record
lacked it": a group is lost when the previous snapshot read it for at least
``MATERIAL_SHARE`` of its records and this one for at most ``NONE_SHARE``, and
stays lost until a snapshot reads it for more than ``NONE_SHARE`` again
(docs/permissions.md). The records a group is judged on are those of its kind
that the run staged, the run row's ``<kind>_seen`` column.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# Thresholds of the degraded judgement, as shares of a group's records (docs/permissions.md).
MATERIAL_SHARE = 0.5  # the previous snapshot read the group for at least half its records ...
NONE_SHARE = 0.05  # ... and this one for at most 5%: (almost) none

# group -> (the staged file it is judged on, the payload fields that make it up). A record "withholds"
# a group when it carries none of the group's fields: tenants that never send one field do not count.
FIELD_GROUPS: dict[str, tuple[str, frozenset[str]]] = {
    "member_contact": (
        "users",
        frozenset({"avatar", "gender", "mobile", "email", "biz_mail", "qr_code", "address"}),
    ),
    "member_details": (
        "users",
        frozenset({"name", "position", "alias", "status", "main_department", "order", "is_leader_in_dept"}),
    ),
    "department_details": ("departments", frozenset({"name", "name_en", "department_leader"})),
    # Counted by the tag walk (wecom.api.tag_walk), not per staged record: a refused tag/get per tag,
    # or 1 for a refused tag/list.
    "tags": ("tags", frozenset({"userlist", "partylist"})),
}

_ADVICE = {
    "member_contact": (
        "WeCom withholds avatar, gender, mobile, email, biz_mail, qr_code and address from this secret (apps "
        "created after 2022-06-20 never get them): put the contact-sync assistant's secret in the wecom "
        "connection to read them, or keep the stored values"
    ),
    "member_details": (
        "user/get and user/list answer 48009 for this IP (a contact-sync IP added after 2022-08-15 may read only "
        "the id lists): call from an IP in the contact-sync assistant's trusted IPs (企业可信IP) from before that "
        "date, give the sync a self-built app's secret for names, or keep the stored names"
    ),
    "department_details": (
        "department/list and department/get answer 48009 for this IP: call from an IP in the contact-sync "
        "assistant's trusted IPs (企业可信IP) from before 2022-08-15, give the sync a self-built app's secret, or "
        "keep the stored names"
    ),
    "tags": (
        "WeCom refuses this secret the tags (tag/list or tag/get: 48009 for a contact-sync IP added after "
        "2022-08-15, 48002 for an app without the right, 60011 for tags outside an app's visible range): call "
        "from an IP in the contact-sync assistant's trusted IPs (企业可信IP) from before that date, or give the "
        "sync a secret that may read the tags (the contact-sync assistant's, or the app that created them), or "
        "keep the stored tags"
    ),
}
_ID_LIST_GROUPS = frozenset({"member_details", "department_details"})  # what the 'ids' strategy leaves out itself
_EXPLICIT_IDS = "the connection's strategy is 'ids' (id lists only): set it to 'auto' to read names and details"


class FieldTally:
    """Counts, while records are staged, how many withheld each field group."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def observer(self, kind: str):
        """A per-record callback for the ``kind`` (``users`` or ``departments``) writer."""
        groups = [(name, fields) for name, (of, fields) in FIELD_GROUPS.items() if of == kind]

        def observe(record: Mapping[str, Any]) -> None:
            for name, fields in groups:
                if fields.isdisjoint(record):
                    self._counts[name] += 1

        return observe

    def as_dict(self) -> dict[str, int]:
        return {name: self._counts[name] for name in FIELD_GROUPS if self._counts[name]}


def records_seen(run: Mapping[str, Any]) -> dict[str, int | None]:
    """The records of each kind a run staged, from its row (``users_seen``, ``departments_seen``)."""
    return {kind: run.get(f"{kind}_seen") for kind in dict.fromkeys(kind for kind, _ in FIELD_GROUPS.values())}


@dataclass(frozen=True)
class Rights:
    """One run's view: how many records lacked each group, of how many records of each kind, and the
    groups it lost against the previous snapshot.

    ``records`` maps a kind (``users``, ``departments``) to the records staged of it; without a count
    (an older row, a kind that records none), a group counts as unreadable as soon as one record lacked it.
    """

    withheld: Mapping[str, int] = field(default_factory=dict)
    lost: frozenset[str] = frozenset()
    records: Mapping[str, int | None] = field(default_factory=dict, compare=False)

    @property
    def degraded(self) -> bool:
        return bool(self.lost)

    def readable_share(self, group: str) -> float | None:
        """The share of the group's records that carried it; None with no records to judge it on."""
        lacking, total = self.withheld.get(group, 0), self.records.get(FIELD_GROUPS[group][0])
        if total is None:
            return 0.0 if lacking else 1.0
        return 1 - min(lacking, total) / total if total else None

    @property
    def unreadable(self) -> frozenset[str]:
        """The groups WeCom sent for (almost) no record: what the caller's rights withhold, as opposed to
        records that lack a group themselves."""
        return frozenset(
            group
            for group in self.withheld
            if (share := self.readable_share(group)) is not None and share <= NONE_SHARE
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | None) -> Rights | None:
        """From a ``wecom_sync_runs`` row (``withheld_fields`` JSON, ``degraded`` comma list, ``*_seen``)."""
        if row is None:
            return None
        withheld = json.loads(row.get("withheld_fields") or "{}")
        lost = frozenset(filter(None, (row.get("degraded") or "").split(",")))
        return cls(withheld, lost, records_seen(row))

    def row_values(self) -> dict[str, str | None]:
        return {
            "withheld_fields": json.dumps(dict(self.withheld), sort_keys=True) if self.withheld else None,
            "degraded": ",".join(sorted(self.lost)) or None,
        }


def judge(withheld: Mapping[str, int], records: Mapping[str, int | None], previous: Rights | None) -> Rights:
    """This run's rights (``records``: staged records per kind) against the previous snapshot's.

    A group is lost when the previous snapshot read it for at least ``MATERIAL_SHARE`` of its records,
    or had lost it already, and this one reads it for at most ``NONE_SHARE``: the loss carries over run
    to run until a snapshot reads the group again. A deployment that never read a group is *limited*,
    never degraded; a member who hides their details makes no loss. A kind without records this run
    (no members at all) leaves its groups as they were.
    """
    now = Rights(dict(withheld), records=dict(records))
    if previous is None:
        return now
    lost = set()
    for group in FIELD_GROUPS:
        before, after = previous.readable_share(group), now.readable_share(group)
        if after is None:
            if group in previous.lost:
                lost.add(group)
        elif after <= NONE_SHARE and (group in previous.lost or (before is not None and before >= MATERIAL_SHARE)):
            lost.add(group)
    return replace(now, lost=frozenset(lost))


def newly_lost(now: Rights, previous: Rights | None) -> list[str]:
    """Groups lost by this run that the previous one still had: what deserves an alert, once."""
    return sorted(now.lost - (previous.lost if previous else frozenset()))


def restored(now: Rights, previous: Rights | None) -> list[str]:
    """Groups the previous snapshot had lost and this one reads again."""
    return sorted((previous.lost if previous else frozenset()) - now.lost)


def advice(groups: Iterable[str], strategy: str | None, strategy_reason: str | None) -> str:
    """One line per cause, in the admin console's terms: what WeCom withholds and what to change."""
    lines = []
    for group in sorted(groups):
        explicit = strategy == "ids" and strategy_reason == "chosen explicitly" and group in _ID_LIST_GROUPS
        line = _EXPLICIT_IDS if explicit else _ADVICE[group]
        if line not in lines:
            lines.append(line)
    return "; ".join(lines)


def describe(withheld: Mapping[str, int]) -> str:
    """``member_contact (30 members), department_details (12 departments)``."""
    unit = {"users": "members", "departments": "departments", "tags": "tag answers"}
    return ", ".join(f"{g} ({n} {unit[FIELD_GROUPS[g][0]]})" for g, n in sorted(withheld.items()))
