"""Write folded member versions to ``wecom_users`` and its links and custom fields, and their history.

Every version is normalized with the full sync's transform (``transform_users``), so rows and
hashes match what a snapshot of the same state writes, and a member whose known values did not
change gets no new version. Contact fields WeCom sent are first put in the company's stored form
(``PiiPolicy``), as a full sync does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from wecom.callbacks.fold import USER_EVENT_FIELDS, Group, Version
from wecom.callbacks.writer import WriteStep, plain_rows, records
from wecom.callbacks.writer_user_extras import attribute_versions, end_tag_memberships, stored_attributes
from wecom.directory.pii import PII_FIELDS, PiiPolicy
from wecom.directory.transform import TABLE_COLUMNS, department_leaders_from_members, transform_users

_COLUMNS = [c for c in TABLE_COLUMNS["wecom_users"] if c != "corp_id"]
# A member's versions, whether its events (or a fetch) said which departments it leads, and the times
# of the versions where it left the department scope (None versions that are no deletion).
Folded = tuple[list[Version], bool, frozenset[datetime]]
_LINK_STATEMENTS = (
    "upsert",
    "delete_stale_memberships",
    "upsert_memberships",
    "delete_stale_direct_leaders",
    "insert_direct_leaders",
    "delete_stale_led_departments",
    "insert_led_departments",
    "delete_references_to_deleted",
    "upsert_attributes",
    "delete_attributes_of_deleted",
    "delete_tag_memberships_of_deleted",
)


def write_users(
    step: WriteStep,
    folded: dict[str, Folded],
    bases: Mapping[str, Mapping[str, Any]],
    groups: list[Group],
    pii: PiiPolicy,
) -> None:
    """Normalize every version, write history, then the current rows and links."""
    _protect(step, groups, folded, pii)
    corp_id = step.corp_id
    rows_at: dict[tuple[str, int], dict[str, Any]] = {}
    links_at: dict[tuple[str, int], dict[int, dict[str, Any]]] = defaultdict(dict)
    final_links, final_direct, led = [], [], []
    for level in range(max(len(versions) for versions, _, _ in folded.values())):
        alive = {
            key: versions[level][1]
            for key, (versions, _, _) in folded.items()
            if level < len(versions) and versions[level][1] is not None
        }
        if not alive:
            continue
        users, links, direct = transform_users(pd.DataFrame(list(alive.values())), corp_id)
        rows_at |= {(key, level): row for key, row in records(users, "userid").items()}
        link_rows = plain_rows(links)
        for link in link_rows:
            links_at[link["userid"], level][int(link["department_id"])] = link
        final = {key for key in alive if len(folded[key][0]) == level + 1}
        final_links += [link for link in link_rows if link["userid"] in final]
        final_direct += [row for row in plain_rows(direct) if row["userid"] in final]
        said = links[links["userid"].isin([key for key in final if folded[key][1]])]
        led += plain_rows(department_leaders_from_members(said, pd.Index(said["department_id"].unique())))
    stage = []
    replaying = {g.key for g in groups if g.replaying}
    for key, (versions, said_leaders, exits) in folded.items():
        base = bases.get(key)
        old_row = base["row"] if base else None
        was_alive = old_row is not None and not old_row["is_deleted"]
        old_links = base["memberships"] if base and was_alive else {}
        last_row = old_row
        previous_hash = old_row["row_hash"] if was_alive else None
        previous_links: dict[int, dict[str, Any]] = old_links
        for level, (stamp, state) in enumerate(versions):
            t = step.t(stamp)
            row = rows_at.get((key, level))
            links = links_at.get((key, level), {})
            ended_by = "out_of_scope" if stamp in exits else "deleted"
            if state is not None and row is not None and row["row_hash"] != previous_hash:
                step.open("user", row, t, level)
            elif state is not None and row is not None and key in replaying:
                step.refresh("user", row, t, level)
            elif state is None and previous_hash is not None:
                step.close("user", {"userid": key}, t, level, ended_by=ended_by)
            for department, link in links.items():
                if previous_links.get(department, {}).get("row_hash") != link["row_hash"]:
                    step.open("membership", link, t, level)
                elif key in replaying:
                    step.refresh("membership", link, t, level)
            for department in previous_links.keys() - links.keys():
                key_of = {"userid": key, "department_id": department}
                step.close("membership", key_of, t, level, ended_by=ended_by if state is None else "deleted")
            previous_hash = None if row is None else row["row_hash"]
            previous_links = links
            last_row = row or last_row
        stamp, state = versions[-1]
        t = step.t(stamp)
        final_row = {c: last_row[c] for c in _COLUMNS}
        stage.append(
            final_row
            | {
                "corp_id": corp_id,
                "is_deleted": state is None,
                "out_of_scope": state is None and stamp in exits,
                "deleted_at": t if state is None else None,
                "replace_leaders": said_leaders or state is None,
                "observed_at": t,
            }
        )
        _count(
            step, old_row, None if state is None else final_row, old_links, previous_links, left_scope=stamp in exits
        )
    member_versions = {key: versions for key, (versions, *_) in folded.items()}
    scope_exits = {key: exits for key, (_, _, exits) in folded.items()}
    attributes = attribute_versions(step, member_versions, stored_attributes(step, folded), scope_exits)
    end_tag_memberships(step, member_versions, scope_exits)
    step.write_history()
    step.recreate_stages("users", ("", "links_", "direct_leaders_", "led_", "attributes_"))
    step.stage("stage_delta_users", stage)
    step.stage("stage_delta_user_attributes", attributes)
    step.stage("stage_delta_user_departments", final_links)
    step.stage("stage_delta_user_direct_leaders", final_direct)
    step.stage("stage_delta_user_led_departments", led)
    step.run("users", *_LINK_STATEMENTS)


def _count(
    step: WriteStep,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    old_links: Mapping[int, Mapping[str, Any]],
    new_links: Mapping[int, Mapping[str, Any]],
    *,
    left_scope: bool = False,
) -> None:
    was_alive = old is not None and not old["is_deleted"]
    if new is None and left_scope:
        step.users.left_scope += was_alive
    elif new is None:
        step.users.deleted += was_alive
    elif old is None:
        step.users.inserted += 1
    elif not was_alive:
        step.users.revived += 1
    else:
        step.users.updated += old["row_hash"] != new["row_hash"]
    step.memberships.deleted += len(old_links.keys() - new_links.keys())
    for department, link in new_links.items():
        if department not in old_links:
            step.memberships.inserted += 1
        else:
            step.memberships.updated += old_links[department]["row_hash"] != link["row_hash"]


def _protect(step: WriteStep, groups: list[Group], folded: dict[str, Folded], pii: PiiPolicy) -> None:
    """Put the contact fields that came from WeCom (events, fetches) in the company's stored form.

    Stored rows already hold that form, so only values WeCom sent are mapped, all at once with
    the same ``PiiPolicy`` a full sync applies.
    """
    if not pii.modes:
        return
    sent: dict[str, set[str]] = {name: set() for name in PII_FIELDS}
    payloads = [
        {USER_EVENT_FIELDS[t]: v for t, v in e.payload.items() if t in USER_EVENT_FIELDS}
        for g in groups
        for e in g.events
    ]
    payloads += [got for (kind, _), got in step.fetched.items() if kind == "user" and isinstance(got, dict)]
    for payload in payloads:
        for name in PII_FIELDS:
            if isinstance(payload.get(name), str) and payload[name]:
                sent[name].add(payload[name])
    width = max(map(len, sent.values()))
    raw = pd.DataFrame(
        {name: pd.Series([*sorted(v), *[None] * (width - len(v))], dtype="string") for name, v in sent.items()}
    )
    stored = pii.apply(raw)
    forms = {
        name: dict(zip(raw[name].dropna(), stored[name][raw[name].notna()].astype(object), strict=True))
        for name in PII_FIELDS
    }
    for versions, _, _ in folded.values():
        for _, state in versions:
            for name, form in forms.items():
                if state is not None and state.get(name) in form:
                    value = form[state[name]]
                    state[name] = None if pd.isna(value) else value
