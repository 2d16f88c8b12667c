"""The settings of one WeCom connection, validated once with messages that name the field.

The Airflow connection maps onto these fields (host = API base URL, login =
corp id, password = secret, extra = the rest); keeping the parsing here, free
of Airflow, lets the hook, the receiver and plain tests share it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wecom.constants import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_WORKERS,
    DEFAULT_TARGET_CONN_ID,
    RENAMED_EXTRAS,
    ROBOT_WEBHOOK_PATH,
)
from wecom.errors import SettingsError

# The extraction strategies (``wecom.api.extract`` runs them) and ``auto``, here so that validating a
# connection, and the provider info that builds the form, never import the extraction stack.
STRATEGIES = ("export", "list", "detail", "ids")
CHOICES = ("auto", *STRATEGIES)
AES_KEY = re.compile(r"[A-Za-z0-9]{43}")
CALLBACK_TOKEN = re.compile(r"[A-Za-z0-9]{1,32}")
ROBOT_WEBHOOK_KEY = re.compile(r"[A-Za-z0-9-]{1,64}")
CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")
INT_OPTIONS = {
    "max_workers": (1, 256),
    "callback_max_body_bytes": (1024, 10_000_000),
    "callback_timestamp_window_s": (1, 7 * 86400),
    "rate_limit_per_minute": (1, 1_000_000),
    "rate_limit_per_hour": (1, 100_000_000),
    "rate_limit_ip_per_minute": (1, 1_000_000),
    "rate_limit_ip_per_hour": (1, 100_000_000),
    "max_retries": (0, 20),
}
FLOAT_OPTIONS = {"timeout": (0.1, 600.0), "rate_limit_wait": (0.0, 3600.0)}
KNOWN_EXTRA = (
    {
        "agent_id",
        "callback_token",
        "callback_aes_secret",
        "strategy",
        "target_conn_id",
        "robot_webhook_url",
        "fetch_conn_id",
    }
    | set(INT_OPTIONS)
    | set(FLOAT_OPTIONS)
)


@dataclass(frozen=True)
class WeComSettings:
    conn_id: str
    corp_id: str
    secret: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    agent_id: int | None = None
    callback_token: str | None = field(default=None, repr=False)
    encoding_aes_key: str | None = field(default=None, repr=False)
    strategy: str = "auto"
    target_conn_id: str = DEFAULT_TARGET_CONN_ID
    robot_webhook_url: str | None = field(default=None, repr=False)
    # The wecom connection whose secret the callback applier fetches ids-only entities with
    # (user/get, department/get); None: this connection's own.
    fetch_conn_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_fields(
        cls,
        conn_id: str,
        *,
        host: str | None,
        login: str | None,
        password: str | None,
        extra: dict[str, Any],
        port: int | None = None,
    ) -> WeComSettings:
        """Validate the raw connection fields; raise ``SettingsError`` naming the first bad field.

        ``port`` 0 means no port: Airflow 3.3's connection form sends 0 for its (hidden) empty port field.
        """

        def fail(field_name: str, problem: str) -> SettingsError:
            return SettingsError(f"connection {conn_id!r}: field {field_name} {problem}")

        if not login:
            raise fail("login (Corp ID)", "is empty: set it to the corp id shown under My Company (ww...)")
        if not password:
            raise fail("password (Secret)", "is empty: paste the contact-sync assistant's or the app's secret")
        extra, legacy_robot_key = _current_names(conn_id, extra)
        unknown = sorted(set(extra) - KNOWN_EXTRA)
        if unknown:
            raise fail("extra", f"has unknown keys {unknown}; allowed: {sorted(KNOWN_EXTRA)}")
        agent_id = extra.get("agent_id")
        if agent_id not in (None, ""):
            if not str(agent_id).isdigit():
                raise fail("agent_id", f"must be a number (the app's AgentId), got {agent_id!r}")
            agent_id = int(agent_id)
        else:
            agent_id = None
        token = extra.get("callback_token") or None
        if token is not None and not CALLBACK_TOKEN.fullmatch(token):
            raise fail("callback_token", "must be 1-32 letters and digits, as the admin console generates it")
        aes_key = extra.get("callback_aes_secret") or None
        if aes_key is not None and not AES_KEY.fullmatch(aes_key):
            raise fail("callback_aes_secret", f"must be exactly 43 letters and digits, got {len(aes_key)} characters")
        fetch_conn_id = extra.get("fetch_conn_id") or None
        if fetch_conn_id is not None and not (isinstance(fetch_conn_id, str) and CONN_ID.fullmatch(fetch_conn_id)):
            raise fail("fetch_conn_id", "must be the id of another wecom connection (letters, digits, _ . -)")
        strategy = extra.get("strategy") or "auto"
        if strategy not in CHOICES:
            raise fail("strategy", f"is {strategy!r}; choose one of {', '.join(CHOICES)}")
        options: dict[str, Any] = {}
        for name, (low, high) in (INT_OPTIONS | FLOAT_OPTIONS).items():
            if extra.get(name) in (None, ""):
                continue
            kind = int if name in INT_OPTIONS else float
            try:
                value = kind(extra[name])
            except (TypeError, ValueError):
                raise fail(name, f"must be a {kind.__name__}, got {extra[name]!r}") from None
            if not low <= value <= high:
                raise fail(name, f"must be between {low} and {high}, got {value}")
            options[name] = value
        base_url = (host or DEFAULT_BASE_URL).rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            base_url = f"https://{base_url}"
        if port:
            base_url = f"{base_url}:{port}"
        robot_url = extra.get("robot_webhook_url") or None
        if robot_url is None and legacy_robot_key:  # release 0.1's key: the robot on the API host
            robot_url = f"{base_url}{ROBOT_WEBHOOK_PATH}?key={legacy_robot_key}"
        if robot_url is not None and robot_key(robot_url) is None:
            raise fail(
                "robot_webhook_url",
                f"must be the group robot's webhook URL, {DEFAULT_BASE_URL}{ROBOT_WEBHOOK_PATH}?key=...",
            )
        return cls(
            conn_id=conn_id,
            corp_id=login,
            secret=password,
            base_url=base_url,
            agent_id=agent_id,
            callback_token=token,
            encoding_aes_key=aes_key,
            strategy=strategy,
            target_conn_id=extra.get("target_conn_id") or DEFAULT_TARGET_CONN_ID,
            robot_webhook_url=robot_url,
            fetch_conn_id=fetch_conn_id,
            options=options,
        )

    @property
    def max_workers(self) -> int:
        """Parallel WeCom API calls of one task, the extraction's walk and the applier's fetches alike: the
        extra's ``max_workers``, else ``DEFAULT_MAX_WORKERS``."""
        return self.options.get("max_workers", DEFAULT_MAX_WORKERS)

    def secrets(self) -> list[str]:
        """Values that must be masked wherever Airflow prints: the secret, the secret extras, the robot's key."""
        robot = robot_key(self.robot_webhook_url) if self.robot_webhook_url else None
        values = (self.secret, self.callback_token, self.encoding_aes_key, self.robot_webhook_url, robot)
        return [value for value in values if value]


def robot_key(url: str) -> str | None:
    """The ``key`` of a group robot's webhook URL (http or https, one key of letters, digits and -), or None."""
    parts = urlsplit(url)
    keys = parse_qs(parts.query).get("key", [])
    if parts.scheme not in ("http", "https") or not parts.netloc or len(keys) != 1:
        return None
    return keys[0] if ROBOT_WEBHOOK_KEY.fullmatch(keys[0]) else None


def _current_names(conn_id: str, extra: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``extra`` with release 0.1's names of the secret extras read under their new names (a
    ``FutureWarning`` each: Airflow masks only the new names by itself); the new name wins when both are
    set. The robot's old key comes back apart: it becomes a URL once the base URL is known."""
    current, legacy_robot_key = dict(extra), None
    for old, new in RENAMED_EXTRAS.items():
        if old not in current:
            continue
        warnings.warn(
            f"connection {conn_id!r}: extra {old!r} is deprecated and will be ignored in the next release: "
            f"rename it {new!r}, a name Airflow masks in the REST API, the UI and logs"
            + (" (given the robot's whole webhook URL)" if new == "robot_webhook_url" else ""),
            FutureWarning,
            stacklevel=4,
        )
        value = current.pop(old)
        if new == "robot_webhook_url":
            legacy_robot_key = str(value or "")
        elif new not in current:
            current[new] = value
    return current, legacy_robot_key
