"""Read every tag WeCom lets this secret see, with its members and departments, into ``tags.jsonl``.

The fewest calls WeCom allows: ``tag/list`` once, then ``tag/get`` once per tag (the whole
membership in one answer, however large). ``export/taguser`` costs at least three calls per tag
(start, poll, download), so it is only the fallback when the secret is refused ``tag/get`` (48002,
48009) but may run export jobs. Every call goes through the client, so through the company's one
rate budget, whichever strategy read the rest.

Absent is not empty. A staged tag record carries ``userlist`` and ``partylist`` only when WeCom
answered them; without them the load keeps the tag's stored members (``wecom.directory.withheld``):

- refused (48002, 48009, 60011): the field group ``tags`` is withheld, as for members' fields;
  ``tag/list`` refused stages nothing and the load deletes no tag (``TagWalk.listed``);
- deleted during the walk (``tag/get`` answers 40068 after ``tag/list`` listed it): recorded as a
  race; the tag and its members stay as stored until a later sync no longer lists it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wecom.api.client import WeComClient
from wecom.api.export_files import ExportJob, iter_export, wait_for
from wecom.errors import (
    WeComError,
    WeComExportError,
    WeComNoPrivilegeError,
    WeComNotFoundError,
    WeComPermissionError,
)
from wecom.store.staging import JsonLinesWriter

log = logging.getLogger(__name__)

TAGS_FILE = "tags.jsonl"
TAGS_GROUP = "tags"
REFUSED = (WeComPermissionError, WeComNoPrivilegeError)
# Applies fn to items concurrently, yielding (item, result or entity-level WeComError): extract's concurrent_map.
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[tuple[Any, Any]]]


@dataclass
class TagWalk:
    """What the tag walk saw: whether the list was readable, what was withheld, what vanished meanwhile."""

    listed: bool = True
    source: str = "tag/get"
    withheld: int = 0
    notes: list[str] = field(default_factory=list)

    def manifest(self, staged: int) -> dict[str, Any]:
        """``tags``: how many were staged, None when the list itself was refused (unknown, not none)."""
        return {
            "tags_listed": self.listed,
            "tag_source": self.source,
            "tag_notes": self.notes,
            "tags": staged if self.listed else None,
        }


@dataclass
class _Answers:
    members: dict[int, dict[str, Any]] = field(default_factory=dict)
    refused: dict[int, WeComError] = field(default_factory=dict)
    vanished: list[int] = field(default_factory=list)


def walk_tags(
    client: WeComClient,
    writer: JsonLinesWriter,
    mapper: Mapper,
    *,
    block_size: int,
    timeout_s: float,
    place: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> TagWalk:
    """Stage one record per listed tag: ``{tagid, tagname, userlist?, partylist?}``; ``place`` restricts
    each record to the department scope (``ScopeFilter.tag``)."""
    walk = TagWalk()
    try:
        listed = client.tag_list()
    except REFUSED as error:
        walk.listed, walk.source, walk.withheld = False, "none", 1
        walk.notes.append(f"tag/list answered errcode {error.errcode}: the stored tags are kept, none deleted")
        log.warning("tag/list refused (errcode %s): the stored tags are kept", error.errcode)
        return walk
    names = {int(t["tagid"]): t.get("tagname") for t in listed}
    answers = _get_each(client, list(names), mapper)
    blocked = [tagid for tagid, error in answers.refused.items() if isinstance(error, WeComPermissionError)]
    if blocked and client.can_export:
        _export_each(client, blocked, answers, block_size=block_size, timeout_s=timeout_s)
        if any(tagid not in answers.refused for tagid in blocked):
            walk.source = "export/taguser"
    for tagid, name in names.items():
        record = {"tagid": tagid} | ({"tagname": name} if name is not None else {})
        record |= answers.members.get(tagid, {})
        writer.write(place(record) if place is not None else record)
    walk.withheld = len(answers.refused)
    if answers.refused:
        errcodes = sorted({str(e.errcode) for e in answers.refused.values()})
        withheld = f"members of {len(answers.refused)} tags withheld (errcode {', '.join(errcodes)})"
        walk.notes.append(f"{withheld}: their stored members kept")
    for tagid in answers.vanished:
        walk.notes.append(f"tag {tagid} was deleted during the walk (errcode 40068): its stored members kept")
    log.info(
        "tags: %d listed, %d read by %s, %d withheld, %d deleted during the walk",
        len(names),
        len(answers.members),
        walk.source,
        len(answers.refused),
        len(answers.vanished),
    )
    return walk


def _get_each(client: WeComClient, tag_ids: list[int], mapper: Mapper) -> _Answers:
    """tag/get per tag; once the secret is refused the endpoint (48002, 48009), the others are not asked."""
    answers, blocked = _Answers(), []

    def get(tagid: int) -> dict[str, Any] | WeComError:
        if blocked:
            return blocked[0]
        try:
            return client.tag_get(tagid)
        except REFUSED as error:
            if isinstance(error, WeComPermissionError):
                blocked.append(error)
            return error

    for tagid, answer in mapper(get, tag_ids):
        if isinstance(answer, WeComNotFoundError):
            answers.vanished.append(tagid)
        elif isinstance(answer, WeComError):
            answers.refused[tagid] = answer
        else:
            answers.members[tagid] = {k: v for k, v in answer.items() if k in ("userlist", "partylist")}
            if answer.get("tagname") is not None:
                answers.members[tagid]["tagname"] = answer["tagname"]
    answers.vanished.sort()
    return answers


def _export_each(
    client: WeComClient, tag_ids: list[int], answers: _Answers, *, block_size: int, timeout_s: float
) -> None:
    """export/taguser for the tags tag/get was refused: every job started, then polled and read together.
    What export cannot read either stays withheld."""
    jobs: dict[int, ExportJob] = {}
    try:
        for tagid in tag_ids:
            try:
                jobs[tagid] = ExportJob(client, "taguser", block_size=block_size, tagid=tagid)
            except WeComNotFoundError:
                answers.vanished.append(tagid)
                del answers.refused[tagid]
        wait_for(list(jobs.values()), timeout_s=timeout_s)
        with tempfile.TemporaryDirectory(prefix="wecom-export-") as spool:
            for tagid, job in jobs.items():
                answers.members[tagid] = tag_members(iter_export(job, max_workers=1, spool=Path(spool)))
                del answers.refused[tagid]
    except (WeComPermissionError, WeComNoPrivilegeError, WeComExportError) as error:
        log.warning("export/taguser cannot stand in for tag/get: %s", error)
    answers.vanished.sort()


def tag_members(entries: Iterable[dict[str, Any]]) -> dict[str, list[Any]]:
    """export/taguser's entries as tag/get's lists: ``{userid, type: 1}`` are members, ``{department, type:
    2}`` departments (``partyid`` accepted too); entries of another shape are skipped with a warning."""
    users: list[dict[str, Any]] = []
    parties: list[int] = []
    skipped = 0
    for entry in entries:
        if isinstance(entry.get("userid"), str):
            users.append({"userid": entry["userid"]})
        elif isinstance(department := entry.get("department", entry.get("partyid")), int):
            parties.append(department)
        else:
            skipped += 1
    if skipped:
        log.warning("export/taguser: %d entries named neither a member nor a department; skipped", skipped)
    return {"userlist": users, "partylist": parties}
