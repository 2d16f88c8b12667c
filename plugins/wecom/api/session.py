"""The HTTP session the transport calls WeCom with: pooled, and reading the environment once per host.

``requests.Session`` with ``trust_env`` looks at the environment on every request: the proxy
variables (scanning all of ``os.environ`` and checking ``no_proxy`` against the host), the CA bundle
variables and ``~/.netrc``. That is about 0.3 ms of CPU per call, a fifth of what a ``user/list`` call
costs our process, for an answer that cannot change during a run. ``WeComSession`` resolves the proxies
and the CA bundle the way ``requests`` does, once per scheme and host, and caches them. ``~/.netrc`` is
not read: WeCom authenticates with the access token in the query string, and an ``Authorization``
header from a netrc entry would only send a password nobody asked for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

POOL_SIZE = 32


class WeComSession(requests.Session):
    """A ``requests.Session`` whose proxies and CA bundle come from the environment, read once per host."""

    def __init__(self, pool_size: int = POOL_SIZE) -> None:
        super().__init__()
        self.trust_env = False
        # A pool as large as a thread pool is likely to be, so threads do not discard connections.
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self._environment: dict[tuple[str, str, str | None], tuple[dict[str, str], str | None]] = {}
        self._environment_lock = threading.Lock()

    def merge_environment_settings(
        self, url: str, proxies: Mapping[str, str] | None, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        """As ``requests`` merges them with ``trust_env``: the environment's proxies for this host and,
        unless the call says otherwise, ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``."""
        environ_proxies, bundle = self._environment_of(url, (proxies or {}).get("no_proxy"))
        if bundle and (verify is True or verify is None):
            verify = bundle
        return super().merge_environment_settings(url, {**environ_proxies, **(proxies or {})}, stream, verify, cert)

    def _environment_of(self, url: str, no_proxy: str | None) -> tuple[dict[str, str], str | None]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        with self._environment_lock:
            if key not in self._environment:
                bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                self._environment[key] = (get_environ_proxies(url, no_proxy=no_proxy), bundle)
            return self._environment[key]
