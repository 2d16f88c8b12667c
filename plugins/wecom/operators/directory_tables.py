"""``DirectoryTablesOperator``: what every operator that writes a company's directory tables shares.

Its asset events: one per table the run changed, through the company's ``AssetAlias``
(``wecom.datasets.alias_name``), to the table's asset named by its URI. Declaring the tables
themselves as outlets would not do: Airflow emits an event for every declared asset of a task
that succeeds, so an unchanged table, a dry run or an apply with nothing to do would trigger
every consumer. Through the alias the run emits exactly the tables it changed, and a consumer
scheduled on the alias hears only its own company. And its OpenLineage facets
(``wecom.lineage.ReportsLineage``), named from the same ``TableLocation`` as the assets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from airflow.sdk import Asset, AssetAlias, BaseOperator, Context

from wecom.constants import DEFAULT_WECOM_CONN_ID
from wecom.datasets import ASSET_GROUP, TableLocation, alias_name, asset_events
from wecom.hooks.wecom import WeComHook
from wecom.lineage import ReportsLineage


class DirectoryTablesOperator(ReportsLineage, BaseOperator):
    """Writes a company's directory tables; ``publish`` emits the asset events of what it changed."""

    template_fields: Sequence[str] = ("wecom_conn_id",)

    def __init__(self, *, wecom_conn_id: str = DEFAULT_WECOM_CONN_ID, company: str = "default", **kwargs: Any) -> None:
        self.alias = AssetAlias(alias_name(company), group=ASSET_GROUP)
        super().__init__(outlets=[*kwargs.pop("outlets", []), self.alias], **kwargs)
        self.wecom_conn_id = wecom_conn_id
        self.company = company

    @cached_property
    def hook(self) -> WeComHook:
        """The company's hook, built once from the rendered ``wecom_conn_id``; ``CompanyContext`` reuses it."""
        return WeComHook(self.wecom_conn_id)

    def publish(
        self,
        context: Context,
        location: TableLocation,
        changed: Mapping[str, Mapping[str, int]],
        *,
        corp_id: str,
        observed_at: datetime | None,
        degraded: Sequence[str],
    ) -> None:
        """One asset event per changed table, its extra saying which company, run and snapshot and
        how many rows changed (``wecom.datasets.asset_events``); none when nothing changed."""
        dag_run = context["dag_run"]
        facts = {
            "company": self.company,
            "corp_id": corp_id,
            "dag_id": dag_run.dag_id,
            "run_id": dag_run.run_id,
            "observed_at": None if observed_at is None else observed_at.isoformat(),
            "degraded": sorted(degraded),
        }
        events = asset_events(location, changed, facts)
        for uri, extra in events:
            context["outlet_events"][self.alias].add(Asset(name=uri, uri=uri, group=ASSET_GROUP), extra=extra)
        if events:
            self.log.info("asset events through %s: %s", self.alias.name, ", ".join(uri for uri, _ in events))
        else:
            self.log.info("no directory table changed: no asset event")
