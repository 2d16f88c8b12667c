"""``WeComExtractOperator``: one run's raw WeCom payloads to staging, paths and counts to XCom."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from wecom import config
from wecom.api.extract import extract_directory
from wecom.constants import DEFAULT_MAX_WORKERS
from wecom.errors import SettingsError, WeComConfigError
from wecom.hooks.target import target_loader
from wecom.hooks.wecom import WeComHook
from wecom.scope import Scope

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_folder(staging_uri: str, corp_id: str, dag_id: str, run_id: str) -> ObjectStoragePath:
    """``<staging>/<corp>/<dag>/<run>``: one folder per run, so a rerun overwrites only its own files."""
    parts = (_UNSAFE.sub("_", p) for p in (corp_id, dag_id, run_id))
    folder = ObjectStoragePath(staging_uri)
    for part in parts:
        folder = folder / part
    return folder


class WeComExtractOperator(BaseOperator):
    """Extract the departments and members of one company's ``scope`` (the ``wecom_companies`` option;
    default the whole company) to ``<run folder>/raw``.

    Returns the manifest (counts, completeness, strategy, API calls) plus
    ``raw_uri``; the payloads themselves stay in staging. Configuration
    errors (wrong secret or corp id, untrusted IP, a forbidden strategy chosen
    explicitly) fail the task at once without burning retries.
    """

    template_fields: Sequence[str] = ("staging_uri", "strategy")

    def __init__(
        self,
        *,
        wecom_conn_id: str = WeComHook.default_conn_name,
        staging_uri: str | None = None,
        strategy: str | None = None,
        scope: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wecom_conn_id = wecom_conn_id
        self.staging_uri = staging_uri
        self.strategy = strategy
        self.scope = Scope.from_option(scope)

    def execute(self, context: Context) -> dict[str, Any]:
        hook = WeComHook(self.wecom_conn_id)
        try:
            settings = hook.settings
            client = hook.get_conn()
            folder = run_folder(
                self.staging_uri or config.staging_uri(), settings.corp_id, self.dag_id, context["run_id"]
            )
            with client:
                manifest = extract_directory(
                    client,
                    folder / "raw",
                    strategy=self.strategy or settings.strategy,
                    max_workers=settings.options.get("max_workers", DEFAULT_MAX_WORKERS),
                    scope=self.scope,
                    current=lambda: target_loader(self.wecom_conn_id).current_entities(settings.corp_id),
                )
        except (WeComConfigError, SettingsError) as error:
            raise AirflowFailException(str(error)) from None
        self.log.info(
            "staged %s departments and %s members under %s (strategy %s, complete=%s, %s API calls)",
            manifest["departments"],
            manifest["users"],
            folder,
            manifest["strategy"],
            manifest["complete"],
            sum(manifest["api_calls"].values()),
        )
        for reason in manifest["incomplete_reasons"]:
            self.log.warning("snapshot incomplete: %s", reason)
        return {**manifest, "run_uri": str(folder), "raw_uri": str(folder / "raw")}
