"""``WeComHook``: the ``wecom`` connection type, turning an Airflow connection into a client."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from wecom.api.budget import BudgetStore, MemoryBudgetStore, RateBudget, RateLimits
from wecom.api.budget_sql import SqlBudgetStore
from wecom.api.tokens import TokenCache
from wecom.constants import DEFAULT_WECOM_CONN_ID, RENAMED_EXTRAS, SECRET_EXTRAS
from wecom.datasets import table_location
from wecom.errors import SettingsError, TargetLocationError, WeComError
from wecom.settings import WeComSettings
from wecom.store.engine import engine_from_airflow_connection

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from wecom.api.client import WeComClient

CLIENT_OPTIONS = ("timeout", "max_retries", "rate_limit_wait")


class WeComHook(BaseHook):
    """Wraps the WeCom credentials: host = API base URL, login = corp id, password = secret.

    Extra holds ``agent_id``, ``callback_token``, ``callback_aes_secret``, ``strategy``,
    ``target_conn_id``, ``robot_webhook_url``, ``fetch_conn_id`` and tuning options (``max_workers``,
    ``rate_limit_per_minute``, ``rate_limit_per_hour`` and their ``rate_limit_ip_*``
    twins, ``timeout``, ``max_retries``, ``rate_limit_wait``). The connection form
    (labels, hidden fields, placeholders) is declared in ``wecom.provider_info``,
    where Airflow 3.2+ reads it.
    """

    conn_name_attr = "wecom_conn_id"
    default_conn_name = DEFAULT_WECOM_CONN_ID
    conn_type = "wecom"
    hook_name = "WeCom"

    def __init__(self, wecom_conn_id: str = default_conn_name, *, target_engine: Engine | None = None) -> None:
        """``target_engine``: the company's target database when the caller already has it open (the rate
        budget is counted there); without it the hook opens one from ``target_conn_id`` when needed."""
        super().__init__()
        self.wecom_conn_id = wecom_conn_id
        self.target_engine = target_engine

    @cached_property
    def settings(self) -> WeComSettings:
        """Validated settings; the secrets are registered with Airflow's masker first (under any name they are
        stored: Airflow masks the current names by itself, not those of release 0.1)."""
        conn = self.get_connection(self.wecom_conn_id)
        extra = conn.extra_dejson
        for value in (conn.password, *(extra.get(k) for k in (*SECRET_EXTRAS, *RENAMED_EXTRAS))):
            if value:
                mask_secret(value)
        settings = WeComSettings.from_fields(
            self.wecom_conn_id, host=conn.host, port=conn.port, login=conn.login, password=conn.password, extra=extra
        )
        for value in settings.secrets():  # the robot's key too, which a log line may show apart from its URL
            mask_secret(value)
        return settings

    @cached_property
    def rate_budget(self) -> RateBudget:
        """The company's frequency budget, counted in its target database so that every DAG,
        task and worker of the company (and every company sharing that database) draws from one."""
        settings = self.settings
        defaults = RateLimits()
        limits = RateLimits(
            per_minute=settings.options.get("rate_limit_per_minute", defaults.per_minute),
            per_hour=settings.options.get("rate_limit_per_hour", defaults.per_hour),
            ip_per_minute=settings.options.get("rate_limit_ip_per_minute", defaults.ip_per_minute),
            ip_per_hour=settings.options.get("rate_limit_ip_per_hour", defaults.ip_per_hour),
        )
        return RateBudget(limits, self._budget_store(settings.target_conn_id), settings.corp_id)

    @cached_property
    def token_cache(self) -> TokenCache:
        """Shared by the clients this hook builds, so they fetch one token per secret."""
        return TokenCache()

    def _budget_store(self, target_conn_id: str) -> BudgetStore:
        if self.target_engine is not None:
            return SqlBudgetStore(self.target_engine)
        try:
            target = self.get_connection(target_conn_id)
        except AirflowNotFoundException:
            self.log.warning(
                "connection %r names target database %r, which does not exist: "
                "the WeCom rate budget is counted in this process only",
                self.wecom_conn_id,
                target_conn_id,
            )
            return MemoryBudgetStore()
        return SqlBudgetStore(engine_from_airflow_connection(target))

    def get_conn(self) -> WeComClient:
        # Imported here: the client brings pycryptodome, and the sensor, the trigger and the plugin
        # use this hook for its settings only.
        from wecom.api.client import WeComClient  # noqa: PLC0415

        settings = self.settings
        return WeComClient(
            settings.base_url,
            settings.corp_id,
            settings.secret,
            conn_id=self.wecom_conn_id,
            budget=self.rate_budget,
            tokens=self.token_cache,
            encoding_aes_key=settings.encoding_aes_key,
            **{k: settings.options[k] for k in CLIENT_OPTIONS if k in settings.options},
        )

    def test_connection(self) -> tuple[bool, str]:
        """What the UI's Test button runs: fetch a token and say in plain words what is wrong."""
        try:
            with self.get_conn() as client:
                client.check_credentials()
        except (WeComError, ValueError) as error:
            return False, str(error)
        return True, f"Connected to WeCom corp {self.settings.corp_id}: the secret and IP are accepted."


def target_location_problem(wecom_conn_id: str) -> str | None:
    """Why the company's tables cannot be named as assets (``wecom.datasets.table_location``): the check
    dags/wecom_companies.py makes at parse time. None when they can, and when a connection is missing
    or malformed: the first task of a run says what to fix then."""
    try:
        hook = WeComHook(wecom_conn_id)
        table_location(hook.get_connection(hook.settings.target_conn_id))
    except TargetLocationError as error:
        return f"target database of {wecom_conn_id!r}: {error}"
    except (AirflowNotFoundException, SettingsError):
        return None
    return None
