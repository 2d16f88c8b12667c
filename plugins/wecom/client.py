"""WeCom directory API client: tokens, retries, typed errors and paging in one place.

WeCom reports every failure as an ``errcode`` in an HTTP 200 body, so one table
(``_RULES``) maps each code to what the client does (fail, retry, renew the
token, wait out a 45009 block) and to the typed error and advice an operator
sees. The access token travels in the query string, so no URL, no requests
exception text and no ``repr`` ever reaches a log line or an exception.
Pure Python: the Airflow hook only builds one of these from a connection.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO

import requests
from requests.adapters import HTTPAdapter

from wecom.crypto import WeComAesCipher
from wecom.errors import (
    WeComConfigError,
    WeComError,
    WeComMalformedResponseError,
    WeComNoPrivilegeError,
    WeComNotFoundError,
    WeComPermissionError,
    WeComRateLimitError,
    WeComTransientError,
)
from wecom.ratelimit import AdaptiveConcurrency, RateLimiter, RateLimits

__all__ = ["DEFAULT_BASE_URL", "RateLimits", "WeComClient"]

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
_log = logging.getLogger("wecom.client")

_GETTOKEN = "gettoken"
_TOKEN_MARGIN_S = 60.0
_INVALID_CURSOR = 50100
_RATE_LIMITED = 45009
_TOO_CONCURRENT = 45033
_DOWNLOAD = "export_file"
_DOWNLOAD_CHUNK = 1 << 20
EXPORT_KINDS = ("user", "simple_user", "department", "taguser")
EXPORT_STATUSES = (0, 1, 2, 3)  # waiting, running, done, failed
_MAX_CURSOR_RESTARTS = 3
_POOL_SIZE = 32
_CALLER_IP = re.compile(r"from ip: ([0-9A-Fa-f.:]+)")
_SECRET_IN_QUERY = re.compile(r"(access_token|corpsecret)=[^&\s\"']*")

# Monotonic clock for token expiry; a module attribute so tests can move time forward.
_clock = time.monotonic


class _Action(enum.Enum):
    FAIL = "fail"
    RETRY = "retry with backoff"
    RENEW = "renew the token and retry once"
    WAIT = "wait out the block"


@dataclass(frozen=True)
class _Rule:
    """What to do about one kind of failure; ``advice`` is a str.format template for the operator."""

    action: _Action
    error: type[WeComError]
    advice: str


def _fail(error: type[WeComError], advice: str) -> _Rule:
    return _Rule(_Action.FAIL, error, advice)


def _retry(advice: str) -> _Rule:
    return _Rule(
        _Action.RETRY,
        WeComTransientError,
        advice + ", still failing after {attempts} attempts; try again later",
    )


def _renew(what: str) -> _Rule:
    return _Rule(
        _Action.RENEW,
        WeComError,
        "{endpoint} rejected a freshly fetched access token (errcode {errcode}, " + what + "); "
        "check whether something else keeps resetting this secret",
    )


_NOT_FOUND = "; it was probably deleted meanwhile"
_RULES: dict[int, _Rule] = {
    -1: _retry("{endpoint}: WeCom is busy (errcode -1)"),
    6000: _retry("{endpoint}: data version conflict (errcode 6000)"),
    45033: _retry("{endpoint}: too many concurrent calls (errcode 45033); lower the concurrency"),
    40001: _fail(
        WeComConfigError,
        "the secret is wrong (errcode 40001); "
        "set the password field to the contact-sync assistant's or the app's secret",
    ),
    40013: _fail(
        WeComConfigError,
        "the corp id is wrong (errcode 40013); set the login field to the corp id "
        "(admin console: My Company > Company Information, starts with 'ww')",
    ),
    60020: _fail(
        WeComConfigError,
        "WeCom refuses calls from IP {ip} (errcode 60020); add {ip} to the trusted-IP list of "
        "the app or the contact-sync assistant in the admin console",
    ),
    48002: _fail(
        WeComPermissionError,
        "this secret may not call {endpoint} (errcode 48002); grant the app read access to the "
        "contacts API in the admin console, or use the contact-sync assistant's secret",
    ),
    48009: _fail(
        WeComPermissionError,
        "the contact-sync assistant may not call {endpoint} from this IP (errcode 48009): since "
        "2022-08-15, IPs newly added to it can only use the id-list endpoints (department/simplelist, "
        "user/list_id); extract with those, or use an app secret with contacts access",
    ),
    60111: _fail(WeComNotFoundError, "{endpoint}: userid not found (errcode 60111)" + _NOT_FOUND),
    60003: _fail(WeComNotFoundError, "{endpoint}: department not found (errcode 60003)" + _NOT_FOUND),
    60123: _fail(WeComNotFoundError, "{endpoint}: invalid department (errcode 60123)" + _NOT_FOUND),
    60011: _fail(
        WeComNoPrivilegeError,
        "{endpoint}: no privilege for this member or department (errcode 60011): it lies outside the "
        "app's visible scope, so the snapshot is incomplete; widen the visible scope in the admin console",
    ),
    _RATE_LIMITED: _Rule(
        _Action.WAIT,
        WeComRateLimitError,
        "{endpoint} is over WeCom's frequency limit (errcode 45009) even after {waits} waits of "
        "{rate_limit_wait} s; lower the limits or concurrency, or run the sync later",
    ),
    _INVALID_CURSOR: _fail(
        WeComError, "{endpoint}: the pagination cursor was rejected (errcode 50100) again and again"
    ),
    40014: _renew("invalid access_token"),
    42001: _renew("access_token expired"),
    41001: _renew("access_token missing"),
}
_UNKNOWN_ERRCODE = _fail(WeComError, "{endpoint} failed with errcode {errcode}: {errmsg}")
_TRANSPORT = _retry("{endpoint}: {detail}")
_LINK_GONE = _fail(
    WeComError, "{endpoint}: the export file link answered {detail}; links live 2 hours, so run the extract again"
)


@dataclass(frozen=True)
class _Failure:
    """One failed attempt, described without the URL."""

    rule: _Rule
    errcode: int | None = None
    errmsg: str = ""
    detail: str = ""


class _Secret:
    """Holds a secret or token so that a stray repr or a traceback with locals shows no value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


@dataclass
class _TokenEntry:
    """The cached token of one (base_url, corp_id, secret); ``lock`` serializes its renewal."""

    lock: threading.Lock
    token: _Secret | None = None
    refresh_at: float = 0.0


_TOKENS: dict[tuple[str, str, str], _TokenEntry] = {}
_LIMITERS: dict[tuple[str, str, RateLimits], RateLimiter] = {}
_GATES: dict[tuple[str, str, int], AdaptiveConcurrency] = {}
_SHARED_LOCK = threading.Lock()


def _token_entry(base_url: str, corp_id: str, secret: str) -> _TokenEntry:
    """Shared between clients so that each secret costs one gettoken per lifetime, not one per client."""
    key = (base_url, corp_id, hashlib.sha256(secret.encode()).hexdigest())
    with _SHARED_LOCK:
        return _TOKENS.setdefault(key, _TokenEntry(threading.Lock()))


def _shared_limiter(base_url: str, corp_id: str, limits: RateLimits) -> RateLimiter:
    """WeCom's limits are per corp, so every client of the corp in this process shares one budget."""
    with _SHARED_LOCK:
        return _LIMITERS.setdefault((base_url, corp_id, limits), RateLimiter(limits))


def _shared_gate(base_url: str, corp_id: str, max_concurrency: int) -> AdaptiveConcurrency:
    """45033 counts calls in flight per corp, so clients of one corp in this process share one gate."""
    with _SHARED_LOCK:
        return _GATES.setdefault((base_url, corp_id, max_concurrency), AdaptiveConcurrency(max_concurrency))


class _RedactQuery(logging.Filter):
    """urllib3 logs request lines (and retried URLs) with their query string: hide token and secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET_IN_QUERY.search(message):
            record.msg = _SECRET_IN_QUERY.sub(r"\1=<redacted>", message)
            record.args = None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactQuery())


def _normalize_endpoint(endpoint: str) -> str:
    if "?" in endpoint:
        raise ValueError("pass query parameters in params, not in the endpoint")
    return endpoint.strip("/").removeprefix("cgi-bin/")


def _caller_ip(errmsg: str) -> str:
    match = _CALLER_IP.search(errmsg)
    return match.group(1) if match else "(WeCom did not say which)"


class WeComClient:
    """Thread-safe client for WeCom's directory API, one ``requests.Session`` per client.

    ``limits=None`` applies WeCom's published limits; pass ``RateLimits(None, None)`` to disable them.
    ``max_concurrency`` caps the calls in flight; the adaptive gate lowers it on 45033 and slow answers.
    ``encoding_aes_key`` (43 characters) is what export jobs encrypt their files with.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        corp_id: str = "",
        secret: str = "",
        *,
        conn_id: str = "wecom_default",
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        rate_limit_wait: float = 60.0,
        max_rate_limit_waits: int = 2,
        limits: RateLimits | None = None,
        max_concurrency: int = _POOL_SIZE,
        encoding_aes_key: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"connection {conn_id!r}: base_url must start with http:// or https://")
        if not corp_id or not secret:
            raise WeComConfigError(
                f"connection {conn_id!r}: set the corp id (login field) and the secret (password field)"
            )
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self.conn_id = conn_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.rate_limit_wait = rate_limit_wait
        self.max_rate_limit_waits = max_rate_limit_waits
        self.limits = limits or RateLimits()
        self._secret = _Secret(secret)
        self._tokens = _token_entry(self.base_url, corp_id, secret)
        self._limiter = _shared_limiter(self.base_url, corp_id, self.limits)
        self.concurrency = _shared_gate(self.base_url, corp_id, max_concurrency)
        self._aes_key = _Secret(encoding_aes_key) if encoding_aes_key else None
        self._owns_session = session is None
        self._session = session or self._new_session()
        self._stats_lock = threading.Lock()
        self._api_calls: dict[str, int] = {}
        self._throttled = 0

    @staticmethod
    def _new_session() -> requests.Session:
        """A pool as large as a thread pool is likely to be, so threads do not discard connections."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=_POOL_SIZE, pool_maxsize=_POOL_SIZE)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def __repr__(self) -> str:
        return f"WeComClient(base_url={self.base_url!r}, corp_id={self.corp_id!r}, conn_id={self.conn_id!r})"

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self._session.close()

    # --- statistics -------------------------------------------------------------------------------

    @property
    def api_calls(self) -> dict[str, int]:
        """HTTP calls made per endpoint, gettoken and retries included (a copy)."""
        with self._stats_lock:
            return dict(self._api_calls)

    @property
    def throttled(self) -> int:
        """How many 45009 answers arrived."""
        with self._stats_lock:
            return self._throttled

    def stats(self) -> dict[str, Any]:
        """A consistent copy of the counters, for manifests and logs."""
        with self._stats_lock:
            return {"api_calls": dict(self._api_calls), "throttled": self._throttled}

    def _count_call(self, endpoint: str) -> None:
        with self._stats_lock:
            self._api_calls[endpoint] = self._api_calls.get(endpoint, 0) + 1

    # --- generic calls ----------------------------------------------------------------------------

    def get(self, endpoint: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET ``cgi-bin/<endpoint>``; returns the whole successful body."""
        return self._call("GET", _normalize_endpoint(endpoint), params, None)

    def post(
        self, endpoint: str, json_body: Mapping[str, Any], params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST a JSON body to ``cgi-bin/<endpoint>``; returns the whole successful body."""
        return self._call("POST", _normalize_endpoint(endpoint), params, json_body)

    def check_credentials(self) -> None:
        """Fetch a fresh token, bypassing the cache: proves the corp id and the secret work now."""
        with self._tokens.lock:
            self._fetch_token()

    # --- directory endpoints ----------------------------------------------------------------------

    def department_list(self, id: int | None = None) -> list[dict[str, Any]]:
        """The department ``id`` and its descendants (maybe without itself); no id: all in scope."""
        body = self.get("department/list", {} if id is None else {"id": id})
        return self._items(body, "department/list", "department", ("id",))

    def department_simplelist(self, id: int | None = None) -> list[dict[str, Any]]:
        """Like department_list with only id, parentid and order; allowed for every secret."""
        body = self.get("department/simplelist", {} if id is None else {"id": id})
        return self._items(body, "department/simplelist", "department_id", ("id",))

    def department_get(self, id: int) -> dict[str, Any]:
        """One department."""
        body = self.get("department/get", {"id": id})
        department = body.get("department")
        if not isinstance(department, dict) or "id" not in department:
            raise self._malformed("department/get", "no department object with an id")
        return department

    def user_list(self, department_id: int) -> list[dict[str, Any]]:
        """Every field of the members directly in ``department_id``."""
        body = self.get("user/list", {"department_id": department_id})
        return self._items(body, "user/list", "userlist", ("userid",))

    def user_simplelist(self, department_id: int) -> list[dict[str, Any]]:
        """userid, name, department and open_userid of the members directly in ``department_id``."""
        body = self.get("user/simplelist", {"department_id": department_id})
        return self._items(body, "user/simplelist", "userlist", ("userid",))

    def user_get(self, userid: str) -> dict[str, Any]:
        """One member's fields (errcode and errmsg removed)."""
        body = self.get("user/get", {"userid": userid})
        if not isinstance(body.get("userid"), str):
            raise self._malformed("user/get", "no userid")
        return {key: value for key, value in body.items() if key not in ("errcode", "errmsg")}

    def user_list_id(self, limit: int = 10000) -> list[dict[str, Any]]:
        """Every (userid, department) pair, following ``next_cursor`` until it is empty or missing.

        A 50100 (stale cursor) means pages may have shifted under us, so paging restarts from the
        beginning with the rows gathered so far discarded, at most ``_MAX_CURSOR_RESTARTS`` times.
        """
        if not 1 <= limit <= 10000:
            raise ValueError(f"limit must be within 1..10000, got {limit}")
        restarts = 0
        while True:
            try:
                return self._list_id_pages(limit)
            except WeComError as exc:
                if exc.errcode != _INVALID_CURSOR or restarts >= _MAX_CURSOR_RESTARTS:
                    raise
                restarts += 1
                _log.warning(
                    "connection %r: user/list_id rejected the cursor (errcode 50100); "
                    "restarting from the first page (restart %d/%d)",
                    self.conn_id,
                    restarts,
                    _MAX_CURSOR_RESTARTS,
                )

    def _list_id_pages(self, limit: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        request: dict[str, Any] = {"limit": limit}
        while True:
            body = self.post("user/list_id", request)
            rows.extend(self._items(body, "user/list_id", "dept_user", ("userid", "department")))
            cursor = body.get("next_cursor")
            if not cursor:
                return rows
            if not isinstance(cursor, str):
                raise self._malformed("user/list_id", "a next_cursor that is not a string")
            request = {"cursor": cursor, "limit": limit}

    # --- export jobs ------------------------------------------------------------------------------

    @property
    def can_export(self) -> bool:
        """Whether an encoding_aes_key is configured, without which export jobs cannot be asked for."""
        return self._aes_key is not None

    def export_cipher(self) -> WeComAesCipher:
        """The cipher that decrypts this client's export files."""
        return WeComAesCipher(self._export_key())

    def export_start(self, kind: str, *, block_size: int = 1_000_000) -> str:
        """Start an ``export/<kind>`` job; returns its jobid. The files will be encrypted with our key."""
        if kind not in EXPORT_KINDS:
            raise ValueError(f"unknown export kind {kind!r}: choose one of {', '.join(EXPORT_KINDS)}")
        endpoint = f"export/{kind}"
        body = self.post(endpoint, {"encoding_aeskey": self._export_key(), "block_size": block_size})
        jobid = body.get("jobid")
        if not isinstance(jobid, str) or not jobid:
            raise self._malformed(endpoint, "no jobid")
        return jobid

    def export_result(self, jobid: str) -> dict[str, Any]:
        """``{status, data_list}`` of a job; ``data_list`` entries are checked to carry url, size and md5."""
        body = self.get("export/get_result", {"jobid": jobid})
        status = body.get("status")
        if status not in EXPORT_STATUSES or isinstance(status, bool):
            raise self._malformed("export/get_result", "a status that is not 0, 1, 2 or 3")
        if status != 2:
            return {"status": status}
        files = self._items(body, "export/get_result", "data_list", ("url", "size", "md5"))
        for entry in files:
            if not isinstance(entry["url"], str) or not isinstance(entry["size"], int) or entry["size"] < 0:
                raise self._malformed("export/get_result", "a data_list entry without a url or a size")
        return {"status": status, "data_list": files}

    def download(self, url: str, sink: BinaryIO, *, size: int) -> int:
        """Stream an export file into ``sink``; returns how many bytes arrived.

        A connection that breaks or ends early is resumed with a ``Range`` request
        (WeCom's file URLs accept them) as long as bytes keep coming; network errors
        and HTTP 5xx are retried like API calls. Returning fewer than ``size``
        bytes means the server itself ends the file early. The URL needs no token
        because it is the credential itself, so it is never logged and never put
        in an error.
        """
        received = retries = 0
        while received < size:
            outcome = self._download_once(url, sink, received)
            if isinstance(outcome, int):
                if outcome == received:
                    return received
                received, retries = outcome, 0
                continue
            if outcome.rule.action is not _Action.RETRY or retries >= self.max_retries:
                raise self._error(_DOWNLOAD, outcome, attempts=retries + 1, waits=0)
            retries += 1
            delay = self._backoff(retries)
            self._warn(_DOWNLOAD, outcome, f"retry {retries}/{self.max_retries} in {delay:.2f} s")
            time.sleep(delay)
        return received

    def _download_once(self, url: str, sink: BinaryIO, offset: int) -> int | _Failure:
        """One GET from ``offset``; the new offset, or a failure (as a value, so no URL is chained)."""
        self._count_call(_DOWNLOAD)
        start = offset
        try:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            with self._session.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
                if response.status_code == 416:
                    return offset
                if response.status_code >= 500 or response.status_code == 429:
                    return _Failure(_TRANSPORT, detail=f"HTTP {response.status_code}")
                if response.status_code not in (200, 206):
                    return _Failure(_LINK_GONE, detail=f"HTTP {response.status_code}")
                if offset and response.status_code == 200:  # the server ignored the range: start over
                    sink.seek(0)
                    sink.truncate()
                    start = offset = 0
                for chunk in response.iter_content(_DOWNLOAD_CHUNK):
                    sink.write(chunk)
                    offset += len(chunk)
        except requests.Timeout:
            return offset if offset > start else _Failure(_TRANSPORT, detail=f"no data within {self.timeout} s")
        except requests.RequestException as exc:
            return offset if offset > start else _Failure(_TRANSPORT, detail=f"network error ({type(exc).__name__})")
        return offset

    def _export_key(self) -> str:
        if self._aes_key is None:
            raise WeComConfigError(
                f"connection {self.conn_id!r}: the export API needs an encoding_aes_key (43 letters and digits) "
                "in the connection extra: WeCom encrypts the exported files with it"
            )
        return self._aes_key.reveal()

    # --- validation -------------------------------------------------------------------------------

    def _items(self, body: dict[str, Any], endpoint: str, key: str, required: tuple[str, ...]) -> list[dict[str, Any]]:
        """``body[key]`` as a list of objects that each carry the ``required`` keys."""
        items = body.get(key)
        if not isinstance(items, list):
            raise self._malformed(endpoint, f"no {key!r} list")
        for item in items:
            if not isinstance(item, dict) or any(name not in item for name in required):
                raise self._malformed(endpoint, f"a {key!r} entry without {', '.join(required)}")
        return items

    def _malformed(self, endpoint: str, what: str) -> WeComMalformedResponseError:
        return WeComMalformedResponseError(
            f"connection {self.conn_id!r}: {endpoint} answered {what}; "
            "check that base_url points at WeCom's API and no proxy rewrites the answers",
            endpoint=endpoint,
        )

    # --- token ------------------------------------------------------------------------------------

    def _token(self) -> _Secret:
        """The cached token, renewed shortly before it expires."""
        entry = self._tokens
        with entry.lock:
            if entry.token is None or _clock() >= entry.refresh_at:
                return self._fetch_token()
            return entry.token

    def _renew_token(self, stale: _Secret) -> None:
        """Renew after WeCom rejected ``stale``, unless another thread already did."""
        with self._tokens.lock:
            if self._tokens.token is stale:
                self._fetch_token()

    def _fetch_token(self) -> _Secret:
        """Call gettoken; the caller holds the entry's lock so concurrent threads fetch once."""
        body = self._call("GET", _GETTOKEN, None, None)
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token:
            raise self._malformed(_GETTOKEN, "no access_token")
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
            raise self._malformed(_GETTOKEN, "no positive expires_in")
        # ~60 s early as documented; half the lifetime for the short-lived tokens of test servers.
        lifetime = max(expires_in - _TOKEN_MARGIN_S, expires_in / 2)
        self._tokens.token = _Secret(token)
        self._tokens.refresh_at = _clock() + lifetime
        _log.info("connection %r: fetched an access token valid for %d s", self.conn_id, expires_in)
        return self._tokens.token

    # --- the call loop ----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """One API call with the retries, token renewal and 45009 waits that ``_RULES`` prescribe."""
        retries = waits = 0
        renewed = False
        while True:
            token = None if endpoint == _GETTOKEN else self._token()
            outcome = self._attempt(method, endpoint, params, json_body, token)
            if isinstance(outcome, dict):
                return outcome
            action = outcome.rule.action
            if action is _Action.RENEW and token is not None and not renewed:
                renewed = True
                self._warn(endpoint, outcome, "fetching a new access token and retrying once")
                self._renew_token(token)
            elif action is _Action.WAIT and waits < self.max_rate_limit_waits:
                waits += 1
                self._warn(endpoint, outcome, f"waiting {self.rate_limit_wait} s for the block to end")
                time.sleep(self.rate_limit_wait)
            elif action is _Action.RETRY and retries < self.max_retries:
                retries += 1
                delay = self._backoff(retries)
                self._warn(endpoint, outcome, f"retry {retries}/{self.max_retries} in {delay:.2f} s")
                time.sleep(delay)
            else:
                raise self._error(endpoint, outcome, attempts=retries + 1, waits=waits)

    def _attempt(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
        token: _Secret | None,
    ) -> dict[str, Any] | _Failure:
        """Send once; a failure comes back as a value so no exception (and no URL) is chained."""
        visible = dict(params or {})
        if token is None:
            secret_params = {"corpid": self.corp_id, "corpsecret": self._secret.reveal()}
            visible["corpid"] = self.corp_id
        else:
            secret_params = {"access_token": token.reveal()}
        self._count_call(endpoint)
        _log.debug("connection %r: %s %s params=%s", self.conn_id, method, endpoint, visible)
        # The frequency permit is taken first so that time spent waiting for budget does not count
        # as latency in the concurrency gate (it would read as a slow server).
        with self._limiter.acquire(endpoint), self.concurrency.slot() as slot:
            try:
                response = self._session.request(
                    method,
                    f"{self.base_url}/cgi-bin/{endpoint}",
                    params={**(params or {}), **secret_params},
                    json=json_body,
                    timeout=self.timeout,
                )
            except requests.Timeout:
                slot.overloaded()
                return _Failure(_TRANSPORT, detail=f"no answer within {self.timeout} s")
            except requests.RequestException as exc:
                return _Failure(_TRANSPORT, detail=f"network error ({type(exc).__name__})")
            if response.status_code >= 500 or response.status_code == 429:
                return _Failure(_TRANSPORT, detail=f"HTTP {response.status_code}")
            outcome = self._interpret(endpoint, response)
            if isinstance(outcome, _Failure) and outcome.errcode == _TOO_CONCURRENT:
                slot.overloaded()
            return outcome

    def _interpret(self, endpoint: str, response: requests.Response) -> dict[str, Any] | _Failure:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._malformed(endpoint, f"something that is not a JSON object (HTTP {response.status_code})")
        errcode = body.get("errcode", 0)
        if not isinstance(errcode, int) or isinstance(errcode, bool):
            raise self._malformed(endpoint, "an errcode that is not a number")
        if errcode == 0:
            return body
        if errcode == _RATE_LIMITED:
            with self._stats_lock:
                self._throttled += 1
        errmsg = body.get("errmsg")
        return _Failure(_RULES.get(errcode, _UNKNOWN_ERRCODE), errcode, errmsg if isinstance(errmsg, str) else "")

    def _backoff(self, retry: int) -> float:
        """Exponential backoff with equal jitter, so threads that failed together do not retry together."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _warn(self, endpoint: str, failure: _Failure, plan: str) -> None:
        cause = f"errcode {failure.errcode}" if failure.errcode is not None else failure.detail
        _log.warning("connection %r: %s failed (%s); %s", self.conn_id, endpoint, cause, plan)

    def _error(self, endpoint: str, failure: _Failure, *, attempts: int, waits: int) -> WeComError:
        advice = failure.rule.advice.format(
            endpoint=endpoint,
            errcode=failure.errcode,
            errmsg=self._redact(failure.errmsg),
            ip=_caller_ip(failure.errmsg),
            detail=failure.detail,
            attempts=attempts,
            waits=waits,
            rate_limit_wait=self.rate_limit_wait,
        )
        return failure.rule.error(f"connection {self.conn_id!r}: {advice}", errcode=failure.errcode, endpoint=endpoint)

    def _redact(self, text: str) -> str:
        """Foreign text (errmsg) shown to operators must not echo a secret back."""
        for secret in (self._secret, self._tokens.token):
            if secret is not None:
                text = text.replace(secret.reveal(), "<redacted>")
        return _SECRET_IN_QUERY.sub(r"\1=<redacted>", text)
