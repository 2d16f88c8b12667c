"""``WeComExtractOperator``: one run's raw WeCom payloads to staging, paths and counts to XCom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context, ObjectStoragePath

from wecom.company_context import CompanyContext
from wecom.constants import DEFAULT_WECOM_CONN_ID
from wecom.datasets import source_datasets
from wecom.hooks.wecom import WeComHook
from wecom.lineage import ReportsLineage
from wecom.scope import Scope
from wecom.store.stage_path import run_folder
from wecom.task_failures import failing_once


class WeComExtractOperator(ReportsLineage, BaseOperator):
    """Extract the departments and members of one company's ``scope`` (the ``wecom_companies`` option;
    default the whole company) to ``<run folder>/raw``.

    Returns the manifest (counts, completeness, strategy, API calls) plus
    ``raw_uri``; the payloads themselves stay in staging (``staging_uri``, default
    ``[wecom] staging_uri``). Configuration errors (wrong secret or corp id,
    untrusted IP, a forbidden strategy chosen explicitly) fail the task at once
    without burning retries. Its lineage names WeCom's entities (``wecom://<corp_id>``)
    as read, with the records of each.
    """

    template_fields: Sequence[str] = ("wecom_conn_id", "staging_uri", "strategy")

    def __init__(
        self,
        *,
        wecom_conn_id: str = DEFAULT_WECOM_CONN_ID,
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

    @cached_property
    def hook(self) -> WeComHook:
        return WeComHook(self.wecom_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        # Imported here: the walk brings the WeCom client, orjson and Arrow, which parsing the DAG file
        # (every task process, the dag-processor) does not need.
        from wecom.api.extract import extract_directory  # noqa: PLC0415

        with failing_once(), CompanyContext(self.wecom_conn_id, hook=self.hook) as company:
            root = ObjectStoragePath(self.staging_uri) if self.staging_uri else company.staging
            folder = run_folder(root, company.corp_id, self.dag_id, context["run_id"])
            with company.hook.get_conn() as client:
                manifest = extract_directory(
                    client,
                    folder / "raw",
                    strategy=self.strategy or company.settings.strategy,
                    max_workers=company.settings.max_workers,
                    scope=self.scope,
                    current=lambda: company.loader.current_entities(company.corp_id),
                )
        self.log.info(
            "staged %s departments and %s members under %s (strategy %s, complete=%s, %s API calls)",
            manifest["departments"],
            manifest["users"],
            folder,
            manifest["strategy"],
            manifest["complete"],
            sum(manifest["api_calls"].values()),
        )
        self.lineage_inputs = source_datasets(manifest["corp_id"], manifest)
        for reason in manifest["incomplete_reasons"]:
            self.log.warning("snapshot incomplete: %s", reason)
        return {**manifest, "run_uri": str(folder), "raw_uri": str(folder / "raw")}
