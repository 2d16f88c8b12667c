"""``WeComLoadOperator``: the full sync's load, with the asset events and lineage of what it wrote."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import Context

from wecom.airflow_tasks import alert_if_degraded, context_run_record, run_conf, staged
from wecom.company_context import CompanyContext
from wecom.datasets import source_datasets, table_datasets
from wecom.operators.directory_tables import DirectoryTablesOperator
from wecom.store.plan import WRITING_STATUSES, LoadOptions
from wecom.task_failures import failing_once


class WeComLoadOperator(DirectoryTablesOperator):
    """Merge the normalized snapshot into the tables in one transaction (``wecom.pipeline.load_staged``).

    ``manifest`` is the extraction's (XCom), ``compared`` the unchanged check's digest. A snapshot
    that would delete too much fails at once (``guard_tripped``, nothing changed). Each table the
    load changed gets one asset event; the lineage names WeCom's entities as read and every table
    as written, with the rows changed.
    """

    template_fields: Sequence[str] = (*DirectoryTablesOperator.template_fields, "manifest", "compared")

    def __init__(
        self,
        *,
        manifest: Any,
        compared: Any,
        max_delete_share: float,
        max_delete_count: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.manifest = manifest
        self.compared = compared
        self.max_delete_share = max_delete_share
        self.max_delete_count = max_delete_count

    def execute(self, context: Context) -> dict[str, Any]:
        from wecom.pipeline import load_staged  # noqa: PLC0415 (pandas, Arrow: not for the DAG file's parse)

        manifest: dict[str, Any] = self.manifest
        conf = run_conf(context)
        options = LoadOptions(
            dry_run=conf.dry_run,
            allow_mass_delete=conf.allow_mass_delete,
            max_delete_share=self.max_delete_share,
            max_delete_count=self.max_delete_count,
        )
        run = context_run_record(manifest, context, self.compared["snapshot_digest"])
        self.lineage_inputs = source_datasets(manifest["corp_id"], manifest)
        with failing_once(), CompanyContext(self.wecom_conn_id, hook=self.hook) as company:
            normalized, raw = staged(manifest, "normalized"), staged(manifest, "raw")
            result = load_staged(company.loader, normalized, manifest, run, options, raw_dir=raw)
            alert_if_degraded(company, result, context)
            changed = result.changed_tables()
            if result.status in WRITING_STATUSES:
                self.lineage_outputs = table_datasets(company.location, changed)
            self.publish(
                context,
                company.location,
                changed,
                corp_id=company.corp_id,
                observed_at=datetime.fromisoformat(manifest["observed_at"]),
                degraded=result.degraded,
            )
        return result.as_dict()
