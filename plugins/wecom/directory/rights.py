"""What a run could not see, named in WeCom's terms, and whether that is less than before.

WeCom withholds whole groups of fields by the caller's rights (see
``wecom.directory.withheld`` for how the tables keep their values). A run
records the groups it did not receive; when a group that an earlier run could
read goes missing (an egress IP moved, a secret replaced), the run still
succeeds but is *degraded* until the rights come back, and says once what
changed and what to do.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
}
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


@dataclass(frozen=True)
class Rights:
    """One run's view: the groups it did not receive, and those of them an earlier run could read."""

    withheld: Mapping[str, int] = field(default_factory=dict)
    lost: frozenset[str] = frozenset()

    @property
    def degraded(self) -> bool:
        return bool(self.lost)

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | None) -> Rights | None:
        """From a ``wecom_sync_runs`` row (``withheld_fields`` JSON, ``degraded`` comma list)."""
        if row is None:
            return None
        withheld = json.loads(row.get("withheld_fields") or "{}")
        lost = frozenset(filter(None, (row.get("degraded") or "").split(",")))
        return cls(withheld, lost)

    def row_values(self) -> dict[str, str | None]:
        return {
            "withheld_fields": json.dumps(dict(self.withheld), sort_keys=True) if self.withheld else None,
            "degraded": ",".join(sorted(self.lost)) or None,
        }


def judge(withheld: Mapping[str, int], previous: Rights | None) -> Rights:
    """This run's rights against the previous snapshot's: a group is lost while it stays withheld after
    some earlier run could read it (the loss carries over run to run until the group comes back)."""
    if previous is None:
        return Rights(dict(withheld))
    readable_before = (set(FIELD_GROUPS) - set(previous.withheld)) | previous.lost
    return Rights(dict(withheld), frozenset(set(withheld) & readable_before))


def newly_lost(now: Rights, previous: Rights | None) -> list[str]:
    """Groups lost by this run that the previous one still had: what deserves an alert, once."""
    return sorted(now.lost - (previous.lost if previous else frozenset()))


def restored(now: Rights, previous: Rights | None) -> list[str]:
    return sorted((previous.lost if previous else frozenset()) - set(now.withheld))


def advice(groups: Iterable[str], strategy: str | None, strategy_reason: str | None) -> str:
    """One line per cause, in the admin console's terms: what WeCom withholds and what to change."""
    lines = []
    for group in sorted(groups):
        explicit = strategy == "ids" and strategy_reason == "chosen explicitly" and group != "member_contact"
        line = _EXPLICIT_IDS if explicit else _ADVICE[group]
        if line not in lines:
            lines.append(line)
    return "; ".join(lines)


def describe(withheld: Mapping[str, int]) -> str:
    """``member_contact (30 members), department_details (12 departments)``."""
    unit = {"users": "members", "departments": "departments"}
    return ", ".join(f"{g} ({n} {unit[FIELD_GROUPS[g][0]]})" for g, n in sorted(withheld.items()))
