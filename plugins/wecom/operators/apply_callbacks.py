"""``WeComApplyCallbacksOperator``: apply the stored callback events, with the asset events and lineage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import Context

from wecom.airflow_tasks import apply_ready_events, pii_policy
from wecom.company_context import CompanyContext
from wecom.datasets import LineageDataset, events_dataset, source_datasets, table_datasets
from wecom.operators.directory_tables import DirectoryTablesOperator
from wecom.scope import Scope
from wecom.task_failures import failing_once


class WeComApplyCallbacksOperator(DirectoryTablesOperator):
    """One apply of the company's ready events (``wecom.airflow_tasks.apply_ready_events``), recorded as
    a ``delta`` run within the company's department ``scope`` (its JSON form, as ``Scope.from_option`` reads).

    Each table the apply changed gets one asset event, however many events it applied; the lineage
    names the events table (and WeCom, when entities were fetched) as read and every table as written.
    """

    def __init__(
        self,
        *,
        pii: Mapping[str, str] | None = None,
        pii_salt_variable: str = "wecom_pii_salt",
        scope: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pii = dict(pii or {})
        self.pii_salt_variable = pii_salt_variable
        self.scope = Scope.from_option(scope)

    def execute(self, context: Context) -> dict[str, Any]:
        with failing_once(), CompanyContext(self.wecom_conn_id, hook=self.hook) as company:
            policy = pii_policy(self.pii, self.pii_salt_variable)
            result = apply_ready_events(company, policy, context, self.scope)
            self.log.info("callback events: %s", ", ".join(f"{n} {status}" for status, n in result.events.items()))
            changed = result.changed_tables()
            self.lineage_inputs = [events_dataset(company.location), *_fetched(company.corp_id, result.api_calls)]
            self.lineage_outputs = table_datasets(company.location, changed)
            self.publish(
                context,
                company.location,
                changed,
                corp_id=company.corp_id,
                observed_at=result.observed_at,
                degraded=result.degraded,
            )
        return result.as_dict()


def _fetched(corp_id: str, api_calls: Mapping[str, int]) -> list[LineageDataset]:
    """The WeCom entities the apply read (``user/get``, ``user/list``, ``department/simplelist``, ...).

    No record count: a ``user/list`` answers for a whole department, and the apply counts calls only.
    """
    read = {endpoint.split("/")[0] for endpoint, calls in api_calls.items() if calls}
    return [dataset for dataset in source_datasets(corp_id) if dataset.name in read]
