"""Admin HTTP API under ``/_sim/``: the Python API of ``SimulatorState`` for a simulator in another process.

Benchmarks and DAG tests run the simulator as a subprocess, so every knob a
test can turn in Python (faults, permission regimes, limits, token expiry,
directory edits) is reachable here too. Plain JSON in and out. ``GET /_sim/users/{userid}``
answers the member exactly as user/get shows it (all fields), and
``POST /_sim/users`` accepts that same record back. Edits answer
``{"changes": [...], "user"|"department": <record>}`` where ``changes`` lists
the change_contact events the edit causes (deletes: ``changes`` only);
refused requests answer 400/404/409 with ``{"detail": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from wecom_simulator.callbacks import CallbackVerificationError
from wecom_simulator.downloads import FAULT_ENDPOINTS
from wecom_simulator.faults import check_endpoint, parse_fault
from wecom_simulator.model import Change, Department, DirectoryError, EntityNotFound
from wecom_simulator.payloads import department_full, user_full
from wecom_simulator.state import SimulatorState
from wecom_simulator.tags import TagChange

router = APIRouter(prefix="/_sim")


class BadRequest(DirectoryError):
    """A malformed admin request (bad JSON, unknown setting)."""


def install_error_handler(app: FastAPI) -> None:
    async def refused(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=getattr(error, "status", 400))

    app.add_exception_handler(DirectoryError, refused)


def _state(request: Request) -> SimulatorState:
    return request.app.state.simulator


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _checked(action: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a state call whose argument errors (ValueError, TypeError) are the caller's fault: 400."""
    try:
        return action(*args, **kwargs)
    except (ValueError, TypeError) as error:
        raise BadRequest(str(error)) from None


def _change_summary(change: Change | TagChange) -> dict[str, Any]:
    if isinstance(change, TagChange):
        lists = ("add_users", "del_users", "add_parties", "del_parties")
        return {"change_type": change.kind, "tagid": change.tag.id, **{k: list(getattr(change, k)) for k in lists}}
    entity = change.entity
    key = {"id": entity.id} if isinstance(entity, Department) else {"userid": entity.userid}
    summary: dict[str, Any] = {"change_type": change.kind, **key, "fields": list(change.fields)}
    if change.old_userid is not None:
        summary["old_userid"] = change.old_userid
    return summary


def _edited(
    state: SimulatorState,
    changes: list[Change] | list[TagChange],
    record: tuple[str, Callable[[], dict[str, Any]]] | None = None,
    status: int = 200,
) -> JSONResponse:
    """The events an edit caused and, unless it deleted, the edited entity's record afterwards."""
    with state.lock:
        body: dict[str, Any] = {"changes": [_change_summary(c) for c in changes]}
        if record is not None:
            body[record[0]] = record[1]()
    return JSONResponse(body, status_code=status)


def _user_view(state: SimulatorState, userid: str) -> dict[str, Any]:
    member = state.org.user(userid)
    if member is None:
        raise EntityNotFound(f"userid {userid!r} not found")
    return user_full(state.org, member)


def _department_view(state: SimulatorState, dept_id: int) -> dict[str, Any]:
    dept = state.org.departments.get(dept_id)
    if dept is None:
        raise EntityNotFound(f"department {dept_id} not found")
    return department_full(dept)


# -- stats and settings ------------------------------------------------------------------------------


@router.get("/health")
async def health() -> dict[str, Any]:
    return {"ok": True}


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    return _state(request).stats()


@router.post("/reset_stats")
async def reset_stats(request: Request) -> dict[str, Any]:
    _state(request).reset_stats()
    return {"ok": True}


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    return _state(request).config.as_dict()


@router.patch("/config")
async def patch_config(request: Request) -> dict[str, Any]:
    return _checked(_state(request).configure, **await _json(request)).as_dict()


def _rights(state: SimulatorState) -> dict[str, Any]:
    config = state.config.as_dict()
    keys = ("regime", "callback_form", "secret_kind", "app_secrets", "app_forbidden_apis", "new_ips", "visible_ranges")
    return {key: config[key] for key in keys}


@router.get("/regime")
async def get_regime(request: Request) -> dict[str, Any]:
    """The rights in force: regime name (``custom`` when no name fits), callback form and their parts."""
    return _rights(_state(request))


@router.post("/regime")
async def set_regime(request: Request) -> dict[str, Any]:
    """``{"regime": "full"|"withheld"|"ids_only", "callback_form"?: "full"|"ids_only"}``; effective at once."""
    state, body = _state(request), await _json(request)
    regime = body.get("regime")
    if not isinstance(regime, str):
        raise BadRequest("regime is required, e.g. 'withheld'")
    _checked(state.set_regime, regime, callback_form=body.get("callback_form"))
    return _rights(state)


@router.post("/app_secrets", status_code=201)
async def add_app_secret(request: Request) -> dict[str, Any]:
    """``{"secret": "...", "kind": "new_app"|"old_app"}``: gettoken accepts it from now on, as that app's."""
    state, body = _state(request), await _json(request)
    secret = body.get("secret")
    if not isinstance(secret, str):
        raise BadRequest("secret is required")
    _checked(state.add_app_secret, secret, body.get("kind", "new_app"))
    return _rights(state)


@router.post("/expire_tokens")
async def expire_tokens(request: Request) -> dict[str, Any]:
    _state(request).expire_tokens()
    return {"ok": True}


@router.post("/invalidate_cursors")
async def invalidate_cursors(request: Request) -> dict[str, Any]:
    _state(request).invalidate_cursors()
    return {"ok": True}


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    state = _state(request)
    with state.lock:
        return {"faults": [f.as_dict() for f in state.faults.pending()]}


@router.post("/faults", status_code=201)
async def add_fault(request: Request) -> dict[str, Any]:
    """``{"spec": "user/get:errcode=48009:times=3"}`` (``--fault``'s syntax) or the fields: ``{"endpoint", ...}``."""
    state, body = _state(request), await _json(request)
    spec = body.pop("spec", None)
    if spec is not None:
        if body or not isinstance(spec, str):
            raise BadRequest("spec must be a string and come alone, e.g. 'user/get:errcode=48009:times=3'")
        return state.inject(_checked(parse_fault, spec, FAULT_ENDPOINTS)).as_dict()
    endpoint = body.pop("endpoint", None)
    if not isinstance(endpoint, str):
        raise BadRequest("endpoint (or spec) is required, e.g. 'user/get'")
    _checked(check_endpoint, endpoint, FAULT_ENDPOINTS)
    return _checked(state.add_fault, endpoint, **body).as_dict()


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    _state(request).clear_faults()
    return {"ok": True}


@router.post("/export_faults", status_code=201)
async def add_export_fault(request: Request) -> dict[str, Any]:
    """``{"kind": "wrong_md5"|"truncated"|"failed", "times": 1}``: applies to the next export jobs."""
    body = await _json(request)
    _checked(_state(request).add_export_fault, body.get("kind"), body.get("times", 1))
    return {"ok": True}


# -- callbacks ---------------------------------------------------------------------------------------


@router.get("/callbacks")
async def callbacks(request: Request) -> dict[str, Any]:
    """The callback settings (token and key left out) and every delivery so far."""
    state = _state(request)
    config = state.callbacks.config
    return {
        "config": config.public() if config else None,
        "callback_form": state.config.callback_form,
        "deliveries": state.callbacks.deliveries(),
    }


@router.post("/callbacks")
async def configure_callbacks(request: Request) -> dict[str, Any]:
    """``{"url", "token", "encoding_aes_key", "ids_only"?, "verify"?, ...CallbackConfig options}``.

    ``ids_only`` sets the callback form (as ``POST /_sim/regime`` does); without it the form stays.
    """
    state, body = _state(request), await _json(request)
    try:
        config = await run_in_threadpool(_checked, state.configure_callbacks, **body)
    except CallbackVerificationError as error:
        raise BadRequest(str(error)) from None
    return {**config.public(), "callback_form": state.config.callback_form}


@router.delete("/callbacks")
async def disable_callbacks(request: Request) -> dict[str, Any]:
    _state(request).disable_callbacks()
    return {"ok": True}


@router.post("/callbacks/flush")
async def flush_callbacks(request: Request) -> JSONResponse:
    """``{"timeout": 10}`` or no body: answers once every queued callback was delivered, 504 if that takes longer."""
    body = await _json(request) if await request.body() else {}
    try:
        await run_in_threadpool(_state(request).flush_callbacks, float(body.get("timeout", 10.0)))
    except TimeoutError as error:
        return JSONResponse({"detail": str(error)}, status_code=504)
    return JSONResponse({"ok": True})


# -- directory edits ---------------------------------------------------------------------------------


@router.get("/users/{userid}")
async def get_user(request: Request, userid: str) -> dict[str, Any]:
    state = _state(request)
    with state.lock:
        return _user_view(state, userid)


@router.post("/users")
async def add_user(request: Request) -> JSONResponse:
    state, body = _state(request), await _json(request)
    changes = state.add_user(body)
    return _edited(state, changes, ("user", lambda: _user_view(state, str(body["userid"]))), status=201)


@router.patch("/users/{userid}")
async def update_user(request: Request, userid: str) -> JSONResponse:
    """Edit a member; ``new_userid`` renames, ``department`` moves."""
    state, body = _state(request), await _json(request)
    changes = state.update_user(userid, body)
    return _edited(state, changes, ("user", lambda: _user_view(state, str(body.get("new_userid", userid)))))


@router.delete("/users/{userid}")
async def delete_user(request: Request, userid: str) -> JSONResponse:
    state = _state(request)
    return _edited(state, state.delete_user(userid))


@router.get("/departments/{dept_id}")
async def get_department(request: Request, dept_id: int) -> dict[str, Any]:
    state = _state(request)
    with state.lock:
        return _department_view(state, dept_id)


@router.post("/departments")
async def add_department(request: Request) -> JSONResponse:
    state, body = _state(request), await _json(request)
    changes = state.add_department(body)
    created = changes[0].entity.id
    return _edited(state, changes, ("department", lambda: _department_view(state, created)), status=201)


@router.patch("/departments/{dept_id}")
async def update_department(request: Request, dept_id: int) -> JSONResponse:
    """Rename (``name``), move (``parentid``), reorder (``order``) or set ``department_leader``."""
    state, body = _state(request), await _json(request)
    changes = state.update_department(dept_id, body)
    return _edited(state, changes, ("department", lambda: _department_view(state, dept_id)))


@router.delete("/departments/{dept_id}")
async def delete_department(request: Request, dept_id: int) -> JSONResponse:
    state = _state(request)
    return _edited(state, state.delete_department(dept_id))
