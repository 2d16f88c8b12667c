"""The WeCom endpoints under ``/cgi-bin/`` and the gauntlet every call runs first.

Order of checks per call, chosen to match what a client experiences on WeCom:
count the call, concurrency cap (45033), latency, injected fault, HTTP method
(43001/43002), frequency limit (45009), access token (41001/40014/42001),
rights of the token's secret from this caller IP (48009/48002, see ``rights``),
then the endpoint itself, within the visible range of the token's app (60011
outside it). Every error is HTTP 200 with a WeCom errcode body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from wecom.api.crypto import WeComAesCipher
from wecom.errors import CryptoConfigError
from wecom_simulator import errcodes as ec
from wecom_simulator.errcodes import ApiError, error_body
from wecom_simulator.exports import BLOCK_SIZE_RANGE, BlockSource
from wecom_simulator.faults import Fault
from wecom_simulator.model import ROOT_ID, Department, Member, Tag, iter_rows
from wecom_simulator.payloads import (
    department_full,
    department_simple,
    tag_brief,
    tag_detail,
    tag_export_entries,
    user_full,
    user_simple,
)
from wecom_simulator.rights import CONTACT_SYNC, refusal, withholds_sensitive
from wecom_simulator.state import SimulatorState

LIST_ID_DEFAULT_LIMIT = 1000
LIST_ID_MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: query parameters (strings), JSON body, caller, base URL.

    ``secret_kind`` is the kind of secret the call's token was issued for, known once the token is checked;
    ``visible`` the departments that secret's app may see (None: the whole company).
    """

    params: dict[str, str]
    body: dict[str, Any]
    client_ip: str
    base_url: str
    secret_kind: str = CONTACT_SYNC
    visible: frozenset[int] | None = None

    @property
    def sensitive(self) -> bool:
        return not withholds_sensitive(self.secret_kind)

    def sees(self, dept_id: int) -> bool:
        return self.visible is None or dept_id in self.visible


Handler = Callable[[SimulatorState, Call], dict[str, Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    handler: Handler
    needs_token: bool = True
    empty: dict[str, Any] = field(default_factory=dict)  # empty result arrays that error bodies carry


def ok(**payload: Any) -> dict[str, Any]:
    return {"errcode": ec.OK, "errmsg": "ok", **payload}


# -- parameter helpers -------------------------------------------------------------------------------


def _department_param(state: SimulatorState, call: Call, raw: str | None) -> Department:
    """A department id parameter: missing -> 40058, malformed -> 60123, unknown -> 60003, out of scope -> 60011."""
    if not raw:
        raise ApiError(ec.INVALID_PARAMETER, "department id missing")
    try:
        dept_id = int(raw)
    except ValueError:
        raise ApiError(ec.INVALID_DEPARTMENT) from None
    if dept_id <= 0:
        raise ApiError(ec.INVALID_DEPARTMENT)
    dept = state.org.departments.get(dept_id)
    if dept is None:
        raise ApiError(ec.DEPARTMENT_NOT_FOUND)
    if dept_id in state.config.out_of_scope_departments or not call.sees(dept_id):
        raise ApiError(ec.NO_PRIVILEGE)
    return dept


def _member_param(state: SimulatorState, call: Call) -> Member:
    userid = call.params.get("userid")
    if not userid:
        raise ApiError(ec.INVALID_PARAMETER, "userid missing")
    member = state.org.user(userid)
    if member is None:
        raise ApiError(ec.USER_NOT_FOUND)
    hidden = state.config.out_of_scope_departments
    if all(d in hidden or not call.sees(d) for d in member.department):
        raise ApiError(ec.NO_PRIVILEGE)
    return member


def _hidden(state: SimulatorState, call: Call) -> frozenset[int]:
    """The departments the call may not read: the refused ones and those outside its app's visible range."""
    hidden = state.config.out_of_scope_departments
    if call.visible is None:
        return hidden
    return hidden | (state.org.departments.keys() - call.visible)


def _subtree(state: SimulatorState, call: Call) -> list[Department]:
    raw = call.params.get("id")
    ids = state.org.subtree_ids(_department_param(state, call, raw).id if raw else ROOT_ID)
    return [state.org.departments[d] for d in ids if call.sees(d)]


# -- handlers ----------------------------------------------------------------------------------------


def gettoken(state: SimulatorState, call: Call) -> dict[str, Any]:
    corpid, secret = call.params.get("corpid"), call.params.get("corpsecret")
    if not corpid:
        raise ApiError(ec.CORPID_MISSING)
    if not secret:
        raise ApiError(ec.SECRET_MISSING)
    if corpid != state.config.corp_id:
        raise ApiError(ec.INVALID_CORPID)
    if state.config.secret_kind_of(secret) is None:
        raise ApiError(ec.INVALID_SECRET)
    token, expires_in = state.tokens.issue(secret, state.config.token_ttl, state.clock())
    return ok(access_token=token, expires_in=expires_in)


def department_list(state: SimulatorState, call: Call) -> dict[str, Any]:
    return ok(department=[department_full(d) for d in _subtree(state, call)])


def department_simplelist(state: SimulatorState, call: Call) -> dict[str, Any]:
    return ok(department_id=[department_simple(d) for d in _subtree(state, call)])


def department_get(state: SimulatorState, call: Call) -> dict[str, Any]:
    dept = _department_param(state, call, call.params.get("id"))
    return ok(department=department_full(dept))


def user_simplelist(state: SimulatorState, call: Call) -> dict[str, Any]:
    dept = _department_param(state, call, call.params.get("department_id"))
    return ok(userlist=[user_simple(state.org, m, call.visible) for m in state.org.members_in(dept.id)])


def user_list(state: SimulatorState, call: Call) -> dict[str, Any]:
    dept = _department_param(state, call, call.params.get("department_id"))
    members = state.org.members_in(dept.id)
    return ok(userlist=[user_full(state.org, m, sensitive=call.sensitive, visible=call.visible) for m in members])


def user_get(state: SimulatorState, call: Call) -> dict[str, Any]:
    return ok(**user_full(state.org, _member_param(state, call), sensitive=call.sensitive, visible=call.visible))


def user_list_id(state: SimulatorState, call: Call) -> dict[str, Any]:
    """One row per (member, department) pair, paged by opaque cursors that expire or can be invalidated."""
    limit = call.body.get("limit", LIST_ID_DEFAULT_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= LIST_ID_MAX_LIMIT:
        raise ApiError(ec.INVALID_PARAMETER, f"limit must be 1-{LIST_ID_MAX_LIMIT}")
    cursor = call.body.get("cursor") or ""
    now = state.clock()
    start = (0, 0)
    if cursor:
        resolved = state.cursors.resolve(str(cursor), now)
        if resolved is None:
            raise ApiError(ec.INVALID_CURSOR)
        start = resolved
    hidden = state.config.out_of_scope_departments
    rows: list[dict[str, Any]] = []
    next_cursor = ""
    for position, member, dept_id in iter_rows(state.org, start):
        if dept_id in hidden or not call.sees(dept_id):
            continue
        if len(rows) == limit:
            next_cursor = state.cursors.issue(position, now, state.config.cursor_ttl_s)
            break
        rows.append({"userid": member.userid, "department": dept_id})
    if next_cursor or state.config.list_id_last_cursor == "empty":
        return ok(next_cursor=next_cursor, dept_user=rows)
    return ok(dept_user=rows)


def _tag_param(state: SimulatorState, raw: Any) -> Tag:
    """A tagid (query string or JSON body): missing -> 40058, malformed or unknown -> 40068."""
    if raw is None or raw == "":
        raise ApiError(ec.INVALID_PARAMETER, "tagid missing")
    try:
        tag_id = int(raw)
    except (TypeError, ValueError):
        raise ApiError(ec.INVALID_TAG) from None
    tag = state.org.tags.get(tag_id)
    if tag is None or isinstance(raw, bool):
        raise ApiError(ec.INVALID_TAG)
    return tag


def tag_list(state: SimulatorState, call: Call) -> dict[str, Any]:
    return ok(taglist=[tag_brief(tag) for tag in state.org.tags.values()])


def tag_get(state: SimulatorState, call: Call) -> dict[str, Any]:
    tag = _tag_param(state, call.params.get("tagid"))
    return ok(**tag_detail(state.org, tag, sensitive=call.sensitive, hidden=_hidden(state, call)))


EXPORT_LOCK_SLICE = 1000


def _export_blocks(state: SimulatorState, kind: str, call: Call, tag: Tag | None = None) -> BlockSource:
    """The export's entries in blocks, built under the lock a slice at a time so the API stays responsive.

    An app exports what it may see: the departments of its visible range and the members in them."""
    sensitive, visible = call.sensitive, call.visible

    def build(items: list[Any]) -> list[dict[str, Any]]:
        org = state.org
        if kind == "department":
            return [department_full(d) for d in items]
        if kind == "taguser":
            return items
        members = [m for m in items if org.is_current(m)]
        if kind == "user":
            return [user_full(org, m, sensitive=sensitive, visible=visible) for m in members]
        return [user_simple(org, m, visible) for m in members]

    def blocks(size: int) -> Iterator[list[dict[str, Any]]]:
        org = state.org
        with state.lock:
            hidden = state.config.out_of_scope_departments
            items: list[Any]
            if kind == "department":
                items = [org.departments[d] for d in org.subtree_ids(ROOT_ID) if call.sees(d)]
            elif tag is not None:
                items = tag_export_entries(org, tag, _hidden(state, call))
            else:
                items = [m for m in org.member_list() if not all(d in hidden or not call.sees(d) for d in m.department)]
        for start in range(0, max(len(items), 1), size):
            block: list[dict[str, Any]] = []
            for first in range(start, min(start + size, len(items)), EXPORT_LOCK_SLICE):
                with state.lock:
                    block += build(items[first : min(first + EXPORT_LOCK_SLICE, start + size)])
            yield block

    return blocks


def _export_starter(kind: str) -> Handler:
    def export_start(state: SimulatorState, call: Call) -> dict[str, Any]:
        try:
            cipher = WeComAesCipher(call.body.get("encoding_aeskey") or "")
        except CryptoConfigError:
            raise ApiError(ec.INVALID_PARAMETER, "encoding_aeskey must be 43 letters or digits") from None
        low, high = BLOCK_SIZE_RANGE
        block_size = call.body.get("block_size", high)
        if not isinstance(block_size, int) or isinstance(block_size, bool) or not low <= block_size <= high:
            raise ApiError(ec.INVALID_PARAMETER, f"block_size must be {low}-{high}")
        tag = _tag_param(state, call.body.get("tagid")) if kind == "taguser" else None
        config = state.config
        jobid = state.exports.start(
            kind,
            cipher,
            block_size,
            _export_blocks(state, kind, call, tag),
            now=state.clock(),
            queue_s=config.export_queue_s,
            run_s=config.export_run_s,
        )
        return ok(jobid=jobid)

    return export_start


def export_get_result(state: SimulatorState, call: Call) -> dict[str, Any]:
    jobid = call.params.get("jobid")
    if not jobid:
        raise ApiError(ec.INVALID_PARAMETER, "jobid missing")
    result = state.exports.result(jobid, state.clock(), call.base_url, state.config.export_url_ttl_s)
    if result is None:
        raise ApiError(ec.INVALID_PARAMETER, "unknown jobid")
    return ok(**result)


ENDPOINTS: dict[str, Endpoint] = {
    "gettoken": Endpoint("GET", gettoken, needs_token=False),
    "department/list": Endpoint("GET", department_list, empty={"department": []}),
    "department/simplelist": Endpoint("GET", department_simplelist, empty={"department_id": []}),
    "department/get": Endpoint("GET", department_get),
    "user/simplelist": Endpoint("GET", user_simplelist, empty={"userlist": []}),
    "user/list": Endpoint("GET", user_list, empty={"userlist": []}),
    "user/get": Endpoint("GET", user_get),
    "user/list_id": Endpoint("POST", user_list_id, empty={"dept_user": []}),
    "export/simple_user": Endpoint("POST", _export_starter("simple_user")),
    "export/user": Endpoint("POST", _export_starter("user")),
    "export/department": Endpoint("POST", _export_starter("department")),
    "export/taguser": Endpoint("POST", _export_starter("taguser")),
    "tag/list": Endpoint("GET", tag_list, empty={"taglist": []}),
    "tag/get": Endpoint("GET", tag_get),
    "export/get_result": Endpoint("GET", export_get_result),
}


# -- the gauntlet ------------------------------------------------------------------------------------


def fault_answer(fault: Fault | None, client_ip: str, empty: dict[str, Any]) -> Response | None:
    """What a fault answers instead of the endpoint; None lets the call proceed (no fault, delay or truncation only)."""
    if fault is None or not fault.replaces_answer:
        return None
    status = fault.http_status or 200
    if fault.body is not None:
        return Response(fault.body, status_code=status, media_type="text/plain")
    if fault.errcode is not None:
        return JSONResponse(error_body(fault.errcode, client_ip, empty=empty), status_code=status)
    return Response(f"<html><body>{status}</body></html>", status_code=status, media_type="text/html")


def cut_short(fault: Fault | None, response: Response) -> Response:
    """The response cut off halfway when the fault says ``truncated``, else unchanged."""
    if fault is None or not fault.truncated:
        return response
    body = bytes(response.body)
    return Response(body[: len(body) // 2], status_code=response.status_code, media_type=response.media_type)


async def delay_and_faults(state: SimulatorState, name: str, params: dict[str, Any]) -> Fault | None:
    """Wait the configured latency, take the first matching fault and wait its delay; the fault shapes the answer."""
    latency_ms = state.config.latency_ms
    if latency_ms:
        await state.pause(latency_ms / 1000)
    fault = state.take_fault(name, params)
    if fault is not None and fault.delay_s:
        await state.pause(fault.delay_s)
    return fault


async def _read_body(request: Request) -> tuple[dict[str, Any], bool]:
    """The JSON body of a POST and whether it parsed; WeCom answers 47001 to malformed JSON."""
    if request.method != "POST":
        return {}, True
    raw = await request.body()
    if not raw.strip():
        return {}, True
    try:
        body = json.loads(raw)
    except ValueError:
        return {}, False
    return (body, True) if isinstance(body, dict) else ({}, False)


def _secret_of(state: SimulatorState, call: Call) -> tuple[str, str]:
    """The secret behind the call's token and its kind; a token whose secret WeCom no longer knows is invalid."""
    token = call.params.get("access_token")
    if not token:
        raise ApiError(ec.TOKEN_MISSING)
    if not state.tokens.is_known(token):
        raise ApiError(ec.INVALID_TOKEN)
    if state.tokens.is_expired(token, state.clock()):
        raise ApiError(ec.TOKEN_EXPIRED)
    secret = state.tokens.secret_of(token)
    kind = state.config.secret_kind_of(secret)
    if kind is None:
        raise ApiError(ec.INVALID_TOKEN)
    return secret, kind


def _check_access(state: SimulatorState, name: str, endpoint: Endpoint, call: Call, body_ok: bool) -> Call:
    """The call with its secret kind once admitted; ApiError with the errcode WeCom answers otherwise."""
    if not state.admit(name):
        raise ApiError(ec.FREQUENCY_LIMIT)
    if endpoint.needs_token:
        config = state.config
        secret, kind = _secret_of(state, call)
        call = replace(call, secret_kind=kind, visible=state.visible_to(secret))
        refused = refusal(
            call.secret_kind,
            name,
            new_ip=config.is_new_ip(call.client_ip),
            app_forbidden_apis=config.app_forbidden_apis,
            new_ips_read_tags=config.new_ips_read_tags,
        )
        if refused is not None:
            raise ApiError(refused)
    if not body_ok:
        raise ApiError(ec.DATA_FORMAT)
    return call


async def serve_api(request: Request, name: str) -> Response:
    """Run one WeCom call through the gauntlet and its handler."""
    state: SimulatorState = request.app.state.simulator
    endpoint = ENDPOINTS.get(name)
    if endpoint is None:
        return Response("not found", status_code=404, media_type="text/plain")
    client_ip = request.client.host if request.client else "127.0.0.1"
    state.record_call(name)
    if not state.enter():
        return JSONResponse(error_body(ec.CONCURRENCY_LIMIT, client_ip, empty=endpoint.empty))
    try:
        body, body_ok = await _read_body(request)
        call = Call(dict(request.query_params), body, client_ip, str(request.base_url).rstrip("/"))
        fault = await delay_and_faults(state, name, {**call.params, **body})
        injected = fault_answer(fault, client_ip, endpoint.empty)
        if injected is not None:
            return cut_short(fault, injected)
        try:
            if request.method != endpoint.method:
                raise ApiError(ec.REQUIRE_POST if endpoint.method == "POST" else ec.REQUIRE_GET)
            with state.lock:
                payload = endpoint.handler(state, _check_access(state, name, endpoint, call, body_ok))
        except ApiError as error:
            payload = error_body(error.errcode, client_ip, error.detail, endpoint.empty)
        return cut_short(fault, JSONResponse(payload))
    finally:
        state.leave()
