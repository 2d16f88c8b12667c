"""Admin routes for tags under ``/_sim/tags``: list, create, rename, delete, and membership edits.

A tag's record is its tag/get answer (every member's name) with ``tagid``. Only membership edits
cause a change_contact event (``update_tag``), as on WeCom; the answers have ``admin``'s shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from wecom_simulator.admin import _edited, _json, _state
from wecom_simulator.payloads import tag_detail
from wecom_simulator.state import SimulatorState
from wecom_simulator.tags import tag_of

router = APIRouter(prefix="/_sim")


# -- tags --------------------------------------------------------------------------------------------


def _tag_view(state: SimulatorState, tag_id: int) -> dict[str, Any]:
    return {"tagid": tag_id, **tag_detail(state.org, tag_of(state.org, tag_id))}


@router.get("/tags")
async def list_tags(request: Request) -> dict[str, Any]:
    state = _state(request)
    with state.lock:
        return {"tags": [_tag_view(state, tag_id) for tag_id in state.org.tags]}


@router.get("/tags/{tag_id}")
async def get_tag(request: Request, tag_id: int) -> dict[str, Any]:
    state = _state(request)
    with state.lock:
        return _tag_view(state, tag_id)


@router.post("/tags")
async def add_tag(request: Request) -> JSONResponse:
    """``{"tagname", "tagid"?}``: no event (WeCom calls back only membership changes)."""
    state = _state(request)
    tag = state.add_tag(await _json(request))
    return _edited(state, [], ("tag", lambda: _tag_view(state, tag.id)), status=201)


@router.patch("/tags/{tag_id}")
async def rename_tag(request: Request, tag_id: int) -> JSONResponse:
    """``{"tagname"}``: no event."""
    state = _state(request)
    state.rename_tag(tag_id, await _json(request))
    return _edited(state, [], ("tag", lambda: _tag_view(state, tag_id)))


@router.delete("/tags/{tag_id}")
async def delete_tag(request: Request, tag_id: int) -> JSONResponse:
    state = _state(request)
    state.delete_tag(tag_id)
    return _edited(state, [])


@router.post("/tags/{tag_id}/members")
async def add_tag_members(request: Request, tag_id: int) -> JSONResponse:
    """``{"userlist"?: [userid], "partylist"?: [department id]}`` join the tag: one update_tag event."""
    state = _state(request)
    changes = state.add_tag_members(tag_id, await _json(request))
    return _edited(state, changes, ("tag", lambda: _tag_view(state, tag_id)))


@router.post("/tags/{tag_id}/members/remove")
async def remove_tag_members(request: Request, tag_id: int) -> JSONResponse:
    """``{"userlist"?, "partylist"?}`` leave the tag: one update_tag event."""
    state = _state(request)
    changes = state.remove_tag_members(tag_id, await _json(request))
    return _edited(state, changes, ("tag", lambda: _tag_view(state, tag_id)))
