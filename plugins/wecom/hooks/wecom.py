"""``WeComHook``: the ``wecom`` connection type, turning an Airflow connection into a client."""

from __future__ import annotations

from functools import cached_property

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from wecom.client import WeComClient
from wecom.errors import WeComError
from wecom.ratelimit import RateLimits
from wecom.settings import DEFAULT_BASE_URL, WeComSettings

CLIENT_OPTIONS = ("timeout", "max_retries", "rate_limit_wait")


class WeComHook(BaseHook):
    """Wraps the WeCom credentials: host = API base URL, login = corp id, password = secret.

    Extra holds ``agent_id``, ``callback_token``, ``encoding_aes_key``, ``strategy``,
    ``target_conn_id``, ``robot_webhook_key`` and tuning options (``max_workers``,
    ``rate_limit_per_minute``, ``rate_limit_per_hour``, ``timeout``, ``max_retries``,
    ``rate_limit_wait``). The connection form (labels, hidden fields, placeholders) is
    declared in ``wecom.provider_info``, where Airflow 3.2+ reads it.
    """

    conn_name_attr = "wecom_conn_id"
    default_conn_name = "wecom_default"
    conn_type = "wecom"
    hook_name = "WeCom"

    def __init__(self, wecom_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.wecom_conn_id = wecom_conn_id

    @cached_property
    def settings(self) -> WeComSettings:
        """Validated settings; the secrets are registered with Airflow's masker first."""
        conn = self.get_connection(self.wecom_conn_id)
        for value in (
            conn.password,
            *(conn.extra_dejson.get(k) for k in ("callback_token", "encoding_aes_key", "robot_webhook_key")),
        ):
            if value:
                mask_secret(value)
        host = conn.host or DEFAULT_BASE_URL
        if conn.port:
            host = f"{host.rstrip('/')}:{conn.port}"
        return WeComSettings.from_fields(
            self.wecom_conn_id, host=host, login=conn.login, password=conn.password, extra=conn.extra_dejson
        )

    def get_conn(self) -> WeComClient:
        settings = self.settings
        limits = RateLimits(
            per_minute=settings.options.get("rate_limit_per_minute", 10_000),
            per_hour=settings.options.get("rate_limit_per_hour", 150_000),
        )
        return WeComClient(
            settings.base_url,
            settings.corp_id,
            settings.secret,
            conn_id=self.wecom_conn_id,
            limits=limits,
            encoding_aes_key=settings.encoding_aes_key,
            **{k: settings.options[k] for k in CLIENT_OPTIONS if k in settings.options},
        )

    def test_connection(self) -> tuple[bool, str]:
        """What the UI's Test button runs: fetch a token and say in plain words what is wrong."""
        try:
            client = self.get_conn()
            client.check_credentials()
        except (WeComError, ValueError) as error:
            return False, str(error)
        return True, f"Connected to WeCom corp {self.settings.corp_id}: the secret and IP are accepted."
