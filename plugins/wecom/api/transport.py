"""Calls to WeCom's API: session, token, retries, frequency budget and concurrency gate.

Everything an endpoint needs but should not know about lives here; the
endpoints (``wecom.api.client``) only say which API to call and what a good answer
holds. The access token travels in the query string, so no URL, no requests
exception text and no ``repr`` ever reaches a log line or an exception.
The budget and the token cache are objects handed in, so processes, clients
and tests choose what they share.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO, Self, TypeVar

import requests

from wecom.api.budget import MemoryBudgetStore, RateBudget, RateLimits
from wecom.api.concurrency import AdaptiveConcurrency
from wecom.api.download import download_once
from wecom.api.redact import redact
from wecom.api.rules import MALFORMED, RATE_LIMITED, TOO_CONCURRENT, TRANSPORT, Action, Failure, interpret
from wecom.api.session import POOL_SIZE, WeComSession
from wecom.api.tokens import Secret, TokenCache
from wecom.constants import DEFAULT_BASE_URL, DEFAULT_WECOM_CONN_ID
from wecom.errors import MalformedAnswerError, WeComConfigError, WeComError

GETTOKEN = "gettoken"
_DOWNLOAD = "export_file"
_TOKEN_MARGIN_S = 60.0
_log = logging.getLogger(__name__)

T = TypeVar("T")
Check = Callable[[dict[str, Any]], T]


def _normalize_endpoint(endpoint: str) -> str:
    if "?" in endpoint:
        raise ValueError("pass query parameters in params, not in the endpoint")
    return endpoint.strip("/").removeprefix("cgi-bin/")


def _whole_body(body: dict[str, Any]) -> dict[str, Any]:
    return body


class Transport:
    """Thread-safe calls to one corp with one secret, one ``requests.Session`` per transport.

    ``budget`` is the company's frequency budget (``RateBudget``); without one the
    transport counts ``limits`` (default: WeCom's published limits) in this process.
    ``tokens`` is the token cache to share (default: one of its own). An adaptive gate
    caps the calls in flight at ``max_concurrency`` at most.
    ``sleep`` is how backoffs and 45009 waits pass, injectable for tests.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        corp_id: str = "",
        secret: str = "",
        *,
        conn_id: str = DEFAULT_WECOM_CONN_ID,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        rate_limit_wait: float = 60.0,
        max_rate_limit_waits: int = 2,
        limits: RateLimits | None = None,
        budget: RateBudget | None = None,
        tokens: TokenCache | None = None,
        max_concurrency: int = POOL_SIZE,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"connection {conn_id!r}: base_url must start with http:// or https://")
        if not corp_id or not secret:
            raise WeComConfigError(
                f"connection {conn_id!r}: set the corp id (login field) and the secret (password field)"
            )
        if budget is not None and limits is not None:
            raise ValueError("pass limits or a budget (which has its own limits), not both")
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self.conn_id = conn_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.rate_limit_wait = rate_limit_wait
        self.max_rate_limit_waits = max_rate_limit_waits
        self.budget = budget or RateBudget(limits or RateLimits(), MemoryBudgetStore(), corp_id)
        self.concurrency = AdaptiveConcurrency(max_concurrency)
        self._secret = Secret(secret)
        self._token_cache = tokens or TokenCache()
        self._tokens = self._token_cache.entry(self.base_url, corp_id, secret)
        self._sleep = sleep
        self._owns_session = session is None
        self._session = session or WeComSession()
        self._stats_lock = threading.Lock()
        self._api_calls: dict[str, int] = {}
        self._throttled = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, corp_id={self.corp_id!r}, conn_id={self.conn_id!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Give unused reserved calls back to the budget; close the session if this transport created it."""
        self.budget.release_unused()
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

    # --- calls ------------------------------------------------------------------------------------

    def get(self, endpoint: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET ``cgi-bin/<endpoint>``; returns the whole successful body."""
        return self.call("GET", endpoint, params=params)

    def post(
        self, endpoint: str, json_body: Mapping[str, Any], params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST a JSON body to ``cgi-bin/<endpoint>``; returns the whole successful body."""
        return self.call("POST", endpoint, params=params, json_body=json_body)

    def call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        check: Check[T] = _whole_body,
    ) -> T:
        """One API call; ``check`` turns a successful body into the result or raises ``MalformedAnswerError``.

        A malformed answer is retried like a busy server, so ``check`` runs inside the retry loop.
        """
        return self._call(method, _normalize_endpoint(endpoint), params, json_body, check)

    def check_credentials(self) -> None:
        """Fetch a fresh token, bypassing the cache: proves the corp id and the secret work now."""
        with self._tokens.lock:
            self._fetch_token()

    # --- token ------------------------------------------------------------------------------------

    def _token(self) -> Secret:
        """The cached token, renewed shortly before it expires."""
        entry = self._tokens
        with entry.lock:
            if entry.token is None or self._token_cache.clock() >= entry.refresh_at:
                return self._fetch_token()
            return entry.token

    def _renew_token(self, stale: Secret) -> None:
        """Renew after WeCom rejected ``stale``, unless another thread already did."""
        with self._tokens.lock:
            if self._tokens.token is stale:
                self._fetch_token()

    def _fetch_token(self) -> Secret:
        """Call gettoken; the caller holds the entry's lock so concurrent threads fetch once."""
        token, expires_in = self._call("GET", GETTOKEN, None, None, _token_answer)
        # ~60 s early as documented; half the lifetime for the short-lived tokens of test servers.
        lifetime = max(expires_in - _TOKEN_MARGIN_S, expires_in / 2)
        self._tokens.token = Secret(token)
        self._tokens.refresh_at = self._token_cache.clock() + lifetime
        _log.info("connection %r: fetched an access token valid for %d s", self.conn_id, expires_in)
        return self._tokens.token

    # --- the call loop ----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
        check: Check[T],
    ) -> T:
        """One API call with the retries, token renewal and 45009 waits that ``rules`` prescribe."""
        retries = waits = 0
        renewed = False
        while True:
            token = None if endpoint == GETTOKEN else self._token()
            outcome = self._attempt(method, endpoint, params, json_body, token=token, check=check)
            if not isinstance(outcome, Failure):
                return outcome
            action = outcome.rule.action
            if action is Action.RENEW and token is not None and not renewed:
                renewed = True
                self._warn(endpoint, outcome, "fetching a new access token and retrying once")
                self._renew_token(token)
            elif action is Action.WAIT and waits < self.max_rate_limit_waits:
                waits += 1
                self._warn(endpoint, outcome, f"waiting {self.rate_limit_wait} s for the block to end")
                self._sleep(self.rate_limit_wait)
            elif action is Action.RETRY and retries < self.max_retries:
                retries += 1
                delay = self._backoff(retries)
                self._warn(endpoint, outcome, f"retry {retries}/{self.max_retries} in {delay:.2f} s")
                self._sleep(delay)
            else:
                raise self._error(endpoint, outcome, attempts=retries + 1, waits=waits)

    def _attempt(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
        *,
        token: Secret | None,
        check: Check[T],
    ) -> T | Failure:
        """Send once; a failure comes back as a value so no exception (and no URL) is chained."""
        visible = dict(params or {})
        if token is None:
            secret_params = {"corpid": self.corp_id, "corpsecret": self._secret.reveal()}
            visible["corpid"] = self.corp_id
        else:
            secret_params = {"access_token": token.reveal()}
        with self.concurrency.slot() as slot:
            # The budget is taken inside the slot so that the call goes out right after its
            # admission (the budget's margin covers only the send's latency); the slot's clock
            # restarts so that waiting for the budget does not read as a slow server.
            self.budget.acquire(endpoint)
            slot.restart()
            self._count_call(endpoint)
            _log.debug("connection %r: %s %s params=%s", self.conn_id, method, endpoint, visible)
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
                return Failure(TRANSPORT, detail=f"no answer within {self.timeout} s")
            except requests.RequestException as exc:
                return Failure(TRANSPORT, detail=f"network error ({type(exc).__name__})")
            if response.status_code >= 500 or response.status_code == 429:
                return Failure(TRANSPORT, detail=f"HTTP {response.status_code}")
            outcome = interpret(response)
            if isinstance(outcome, Failure):
                if outcome.errcode == TOO_CONCURRENT:
                    slot.overloaded()
                elif outcome.errcode == RATE_LIMITED:
                    with self._stats_lock:
                        self._throttled += 1
                return outcome
        try:
            return check(outcome)
        except MalformedAnswerError as malformed:
            return Failure(MALFORMED, detail=malformed.what)

    def _backoff(self, retry: int) -> float:
        """Exponential backoff with equal jitter, so threads that failed together do not retry together."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _warn(self, endpoint: str, failure: Failure, plan: str) -> None:
        cause = f"errcode {failure.errcode}" if failure.errcode is not None else failure.detail
        _log.warning("connection %r: %s failed (%s); %s", self.conn_id, endpoint, cause, plan)

    def _error(self, endpoint: str, failure: Failure, *, attempts: int, waits: int) -> WeComError:
        errmsg = redact(failure.errmsg, self._secret, self._tokens.token)
        advice = failure.advice(endpoint, errmsg, attempts=attempts, waits=waits, rate_limit_wait=self.rate_limit_wait)
        return failure.rule.error(f"connection {self.conn_id!r}: {advice}", errcode=failure.errcode, endpoint=endpoint)

    # --- file downloads ---------------------------------------------------------------------------

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
            self._count_call(_DOWNLOAD)
            outcome = download_once(self._session, url, sink, received, timeout=self.timeout)
            if isinstance(outcome, int):
                if outcome == received:
                    return received
                received, retries = outcome, 0
                continue
            if outcome.rule.action is not Action.RETRY or retries >= self.max_retries:
                raise self._error(_DOWNLOAD, outcome, attempts=retries + 1, waits=0)
            retries += 1
            delay = self._backoff(retries)
            self._warn(_DOWNLOAD, outcome, f"retry {retries}/{self.max_retries} in {delay:.2f} s")
            self._sleep(delay)
        return received


def _token_answer(body: dict[str, Any]) -> tuple[str, int]:
    token, expires_in = body.get("access_token"), body.get("expires_in")
    if not isinstance(token, str) or not token:
        raise MalformedAnswerError("no access_token")
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
        raise MalformedAnswerError("no positive expires_in")
    return token, expires_in
