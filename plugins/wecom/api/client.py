"""WeCom's directory API, one small method per endpoint, on top of ``wecom.api.transport``.

Each method names the API and says what a good answer holds; an answer that
lacks it raises ``MalformedAnswerError`` inside the transport's retry loop, so a cut-short
or rewritten answer is retried like a busy server and then fails with the
endpoint's name. Pure Python: the Airflow hook only builds one of these from a
connection (with the company's shared rate budget).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from wecom.api.budget import RateLimits
from wecom.api.crypto import WeComAesCipher
from wecom.api.rules import INVALID_CURSOR
from wecom.api.tokens import Secret
from wecom.api.transport import Transport
from wecom.errors import MalformedAnswerError, WeComConfigError, WeComError

__all__ = ["EXPORT_KINDS", "RateLimits", "WeComClient"]

EXPORT_KINDS = ("user", "department", "taguser")
EXPORT_STATUSES = (0, 1, 2, 3)  # waiting, running, done, failed
MAX_CURSOR_RESTARTS = 3
_log = logging.getLogger(__name__)


def _items(key: str, *required: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    """A check: ``body[key]`` as a list of objects that each carry the ``required`` keys."""

    def check(body: dict[str, Any]) -> list[dict[str, Any]]:
        items = body.get(key)
        if not isinstance(items, list):
            raise MalformedAnswerError(f"no {key!r} list")
        for item in items:
            if not isinstance(item, dict) or any(name not in item for name in required):
                raise MalformedAnswerError(f"a {key!r} entry without {', '.join(required)}")
        return items

    return check


def _department(body: dict[str, Any]) -> dict[str, Any]:
    department = body.get("department")
    if not isinstance(department, dict) or "id" not in department:
        raise MalformedAnswerError("no department object with an id")
    return department


def _member(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("userid"), str):
        raise MalformedAnswerError("no userid")
    return {key: value for key, value in body.items() if key not in ("errcode", "errmsg")}


def _id_page(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    rows = _items("dept_user", "userid", "department")(body)
    cursor = body.get("next_cursor") or None
    if cursor is not None and not isinstance(cursor, str):
        raise MalformedAnswerError("a next_cursor that is not a string")
    return rows, cursor


def _tag_members(body: dict[str, Any]) -> dict[str, Any]:
    """tag/get: ``tagname``, ``userlist`` (objects with a userid) and ``partylist`` (department ids) as far as
    they are present: a list the answer lacks stays absent (withheld), it never becomes empty."""
    answer = {key: body[key] for key in ("tagname", "userlist", "partylist") if key in body}
    if "userlist" in answer:
        answer["userlist"] = _items("userlist", "userid")(answer)
    parties = answer.get("partylist", [])
    if not isinstance(parties, list) or any(not isinstance(d, int) or isinstance(d, bool) for d in parties):
        raise MalformedAnswerError("a partylist that is not a list of department ids")
    return answer


def _jobid(body: dict[str, Any]) -> str:
    jobid = body.get("jobid")
    if not isinstance(jobid, str) or not jobid:
        raise MalformedAnswerError("no jobid")
    return jobid


def _export_result(body: dict[str, Any]) -> dict[str, Any]:
    status = body.get("status")
    if status not in EXPORT_STATUSES or isinstance(status, bool):
        raise MalformedAnswerError("a status that is not 0, 1, 2 or 3")
    if status != 2:
        return {"status": status}
    files = _items("data_list", "url", "size", "md5")(body)
    for entry in files:
        if not isinstance(entry["url"], str) or not isinstance(entry["size"], int) or entry["size"] < 0:
            raise MalformedAnswerError("a data_list entry without a url or a size")
    return {"status": status, "data_list": files}


class WeComClient(Transport):
    """The directory endpoints; see ``Transport`` for the session, token, retry and budget options.

    ``encoding_aes_key`` (43 characters) is what export jobs encrypt their files with.
    """

    def __init__(self, *args: Any, encoding_aes_key: str | None = None, **options: Any) -> None:
        super().__init__(*args, **options)
        self._aes_key = Secret(encoding_aes_key) if encoding_aes_key else None

    # --- directory endpoints ----------------------------------------------------------------------

    def department_list(self, id: int | None = None) -> list[dict[str, Any]]:
        """The department ``id`` and its descendants (maybe without itself); no id: all in scope."""
        params = {} if id is None else {"id": id}
        return self.call("GET", "department/list", params=params, check=_items("department", "id"))

    def department_simplelist(self, id: int | None = None) -> list[dict[str, Any]]:
        """Like department_list with only id, parentid and order; allowed for every secret."""
        params = {} if id is None else {"id": id}
        return self.call("GET", "department/simplelist", params=params, check=_items("department_id", "id"))

    def department_get(self, id: int) -> dict[str, Any]:
        """One department."""
        return self.call("GET", "department/get", params={"id": id}, check=_department)

    def user_list(self, department_id: int) -> list[dict[str, Any]]:
        """Every field of the members directly in ``department_id``."""
        params = {"department_id": department_id}
        return self.call("GET", "user/list", params=params, check=_items("userlist", "userid"))

    def user_get(self, userid: str) -> dict[str, Any]:
        """One member's fields (errcode and errmsg removed)."""
        return self.call("GET", "user/get", params={"userid": userid}, check=_member)

    def user_list_id(self, limit: int = 10000) -> list[dict[str, Any]]:
        """Every (userid, department) pair, following ``next_cursor`` until it is empty or missing.

        A 50100 (stale cursor) means pages may have shifted under us, so paging restarts from the
        beginning with the rows gathered so far discarded, at most ``MAX_CURSOR_RESTARTS`` times.
        """
        if not 1 <= limit <= 10000:
            raise ValueError(f"limit must be within 1..10000, got {limit}")
        restarts = 0
        while True:
            try:
                return self._list_id_pages(limit)
            except WeComError as exc:
                if exc.errcode != INVALID_CURSOR or restarts >= MAX_CURSOR_RESTARTS:
                    raise
                restarts += 1
                _log.warning(
                    "connection %r: user/list_id rejected the cursor (errcode 50100); "
                    "restarting from the first page (restart %d/%d)",
                    self.conn_id,
                    restarts,
                    MAX_CURSOR_RESTARTS,
                )

    def _list_id_pages(self, limit: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        request: dict[str, Any] = {"limit": limit}
        while True:
            page, cursor = self.call("POST", "user/list_id", json_body=request, check=_id_page)
            rows.extend(page)
            if cursor is None:
                return rows
            request = {"cursor": cursor, "limit": limit}

    def tag_list(self) -> list[dict[str, Any]]:
        """Every tag the secret sees: ``{tagid, tagname}``."""
        return self.call("GET", "tag/list", check=_items("taglist", "tagid"))

    def tag_get(self, tagid: int) -> dict[str, Any]:
        """One tag's name, members (``userid``, and ``name`` unless withheld) and departments (whole subtrees)."""
        return self.call("GET", "tag/get", params={"tagid": tagid}, check=_tag_members)

    # --- export jobs ------------------------------------------------------------------------------

    @property
    def can_export(self) -> bool:
        """Whether an encoding_aes_key is configured, without which export jobs cannot be asked for."""
        return self._aes_key is not None

    def export_cipher(self) -> WeComAesCipher:
        """The cipher that decrypts this client's export files."""
        return WeComAesCipher(self._export_key())

    def export_start(self, kind: str, *, block_size: int = 1_000_000, tagid: int | None = None) -> str:
        """Start an ``export/<kind>`` job (``taguser`` exports the members of ``tagid``); returns its jobid.
        The files will be encrypted with our key."""
        if kind not in EXPORT_KINDS:
            raise ValueError(f"unknown export kind {kind!r}: choose one of {', '.join(EXPORT_KINDS)}")
        if (kind == "taguser") != (tagid is not None):
            raise ValueError("export/taguser takes a tagid, and only it does")
        body = {"encoding_aeskey": self._export_key(), "block_size": block_size}
        if tagid is not None:
            body["tagid"] = tagid
        return self.call("POST", f"export/{kind}", json_body=body, check=_jobid)

    def export_result(self, jobid: str) -> dict[str, Any]:
        """``{status, data_list}`` of a job; ``data_list`` entries are checked to carry url, size and md5."""
        return self.call("GET", "export/get_result", params={"jobid": jobid}, check=_export_result)

    def _export_key(self) -> str:
        if self._aes_key is None:
            raise WeComConfigError(
                f"connection {self.conn_id!r}: the export API needs the callback's EncodingAESKey (43 letters and "
                "digits) as callback_aes_secret in the connection extra: WeCom encrypts the exported files with it"
            )
        return self._aes_key.reveal()
