"""The settings of one WeCom connection, validated once with messages that name the field.

The Airflow connection maps onto these fields (host = API base URL, login =
corp id, password = secret, extra = the rest); keeping the parsing here, free
of Airflow, lets the hook, the receiver and plain tests share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from wecom.constants import DEFAULT_BASE_URL, DEFAULT_TARGET_CONN_ID, SECRET_EXTRAS
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
        "encoding_aes_key",
        "strategy",
        "target_conn_id",
        "robot_webhook_key",
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
    robot_webhook_key: str | None = field(default=None, repr=False)
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
        aes_key = extra.get("encoding_aes_key") or None
        if aes_key is not None and not AES_KEY.fullmatch(aes_key):
            raise fail("encoding_aes_key", f"must be exactly 43 letters and digits, got {len(aes_key)} characters")
        robot_key = extra.get("robot_webhook_key") or None
        if robot_key is not None and not ROBOT_WEBHOOK_KEY.fullmatch(robot_key):
            raise fail("robot_webhook_key", "must be the key=... value of the group robot's webhook URL")
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
            robot_webhook_key=robot_key,
            fetch_conn_id=fetch_conn_id,
            options=options,
        )

    def secrets(self) -> list[str]:
        """Values that must be masked wherever Airflow prints: the secret and the secret extras."""
        return [s for s in (self.secret, *(getattr(self, name) for name in SECRET_EXTRAS)) if s]
