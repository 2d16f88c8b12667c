"""OpenLineage for the package's operators, the way the provider's developer guide describes it.

The operators keep what a run read and wrote as plain ``wecom.datasets.LineageDataset`` values and
return them from ``get_openlineage_facets_on_complete`` through ``operator_lineage``: the names come
from the same ``TableLocation`` as the asset URIs, each table carries its schema (``wecom.tables``)
and the rows the run wrote, each WeCom entity the records it read. ``convert_sqlite_asset`` is the
``to_openlineage_converter`` of the ``sqlite`` asset scheme, so another DAG's ``Asset`` on one of
the tables is the same OpenLineage dataset as ours.

OpenLineage is imported inside the functions, as the guide asks: the package works the same
whether or not a transport is configured, and nothing here runs unless the listener asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from wecom.datasets import LineageDataset, sqlite_lineage_dataset

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset


def operator_lineage(inputs: Iterable[LineageDataset], outputs: Iterable[LineageDataset]) -> OperatorLineage:
    """The provider's ``OperatorLineage``: schema facets, input and output row counts."""
    from airflow.providers.openlineage.extractors import OperatorLineage  # noqa: PLC0415
    from openlineage.client.event_v2 import InputDataset, OutputDataset  # noqa: PLC0415
    from openlineage.client.facet_v2 import (  # noqa: PLC0415
        input_statistics_input_dataset,
        output_statistics_output_dataset,
        schema_dataset,
    )

    def facets(dataset: LineageDataset) -> dict[str, Any]:
        if not dataset.fields:
            return {}
        fields = [schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in dataset.fields]
        return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}

    return OperatorLineage(
        inputs=[
            InputDataset(
                namespace=d.namespace,
                name=d.name,
                facets=facets(d),
                inputFacets={}
                if d.row_count is None
                else {"inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(d.row_count)},
            )
            for d in inputs
        ],
        outputs=[
            OutputDataset(
                namespace=d.namespace,
                name=d.name,
                facets=facets(d),
                outputFacets={}
                if d.row_count is None
                else {
                    "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(d.row_count)
                },
            )
            for d in outputs
        ],
    )


class ReportsLineage:
    """For operators: ``execute`` sets what the run read and wrote (``lineage_inputs`` and
    ``lineage_outputs``); the OpenLineage listener reads it when the task completes or fails. Nothing
    is looked up then, so lineage costs the run no query and cannot fail it."""

    lineage_inputs: list[LineageDataset]
    lineage_outputs: list[LineageDataset]

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        return operator_lineage(getattr(self, "lineage_inputs", ()), getattr(self, "lineage_outputs", ()))


def convert_sqlite_asset(asset: Any, lineage_context: Any) -> Dataset:
    """OpenLineage dataset of an ``sqlite://localhost/<path>/<table>`` asset (the provider's converter)."""
    from openlineage.client.event_v2 import Dataset  # noqa: PLC0415

    namespace, name = sqlite_lineage_dataset(urlsplit(asset.uri))
    return Dataset(namespace=namespace, name=name)
