"""
### WeCom directory sync

Keeps every department and member of one WeCom company in the target database.

`ensure_schema` → `check_freshness` → `extract` → `skip_if_unchanged` → `transform` → `quality_checks` → `load`
→ `summarize`

* **ensure_schema** creates missing tables; a target database that cannot be reached fails here
  in one line naming the connection and what to fix (at once, unless it may be restarting).
* **check_freshness** validates the run conf and skips the run (recorded as `skipped`) when a
  snapshot already covers its interval: backfills and catch-up cost one extraction, not one per day.
* **extract** walks the WeCom API (strategy from the company's `wecom` connection, `auto` by
  default) and stages the raw answers; XCom carries only paths and counts.
* **skip_if_unchanged** records the run as `unchanged` and skips transform, quality_checks and
  load when WeCom answered exactly what the last snapshot held (same records, in any order) and
  nothing else changed the tables since: no callback applied or pending, the same live counts.
* **transform** normalizes them with pandas into one Parquet file per table, applying the
  company's PII policy (keep, hash or drop contact fields).
* **quality_checks** stops the run, loading nothing, on duplicate keys, unknown parents,
  members in unknown departments or cycles.
* **load** plans the merge, stops if it would soft-delete too much (`guard_tripped`), then writes
  current and history tables in one transaction, in observation-time order. Where WeCom withheld
  fields (the rights of the secret and of this IP), the stored values are kept; a run that can
  see less than the previous one is recorded `degraded` and alerts the group robot once. Each
  table it changed gets one Airflow asset event (through the company's asset alias
  `wecom_directory`), with the counts in its extra; an unchanged, skipped, dry or refused run
  emits none (docs/data-platform.md).

Run conf (all optional, default false): `{"dry_run": true}` extracts whatever the freshness, records
the plan and changes nothing;
`{"force": true}` extracts even when a fresh snapshot exists, and transforms and loads even when
nothing changed (a full compare that also repairs tables edited by hand);
`{"allow_mass_delete": true}` lets one run pass the mass-deletion guard. Companies, schedules and
options come from the Airflow Variable `wecom_companies` (see the README). Every task is safe to
clear and rerun.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Context, Param, Variable, dag, task

from wecom.airflow_tasks import (
    context_run_record,
    emit_run_metrics,
    ensure_schema_and_replay,
    logged_run_row,
    pii_policy,
    record_failure,
    run_conf,
    skip_if_covered,
    staged,
)
from wecom.companies import Company, read_companies
from wecom.company_context import CompanyContext
from wecom.constants import COMPANIES_VARIABLE
from wecom.operators.extract import WeComExtractOperator
from wecom.operators.load import WeComLoadOperator
from wecom.task_failures import fails_once

log = logging.getLogger(__name__)

# The tasks that transform, check and load import wecom.pipeline (pandas, Arrow) when they run:
# the dag-processor parses this file every few minutes, and every task process parses it before
# running its task, so its top-level imports stay light (Airflow's best practices say the same).


@task
@fails_once
def ensure_schema(wecom_conn_id: str) -> None:
    """Create missing tables first, so an unreachable database fails before any WeCom call; then record
    the failed runs that waited for the database."""
    with CompanyContext(wecom_conn_id) as company:
        ensure_schema_and_replay(company)


@task
@fails_once
def check_freshness(wecom_conn_id: str, freshness_minutes: float, **context: Context) -> None:
    with CompanyContext(wecom_conn_id) as company:
        skip_if_covered(company, timedelta(minutes=freshness_minutes), context)


@task.short_circuit(ignore_downstream_trigger_rules=False)
@fails_once
def skip_if_unchanged(
    manifest: dict[str, Any], pii: dict[str, str], pii_salt_variable: str, wecom_conn_id: str, **context: Context
) -> dict[str, str | None] | bool:
    """False (skip the rest) once the run is recorded as unchanged; else the digest for the load."""
    from wecom.pipeline import snapshot_digest  # noqa: PLC0415

    digest = snapshot_digest(manifest, pii_policy(pii, pii_salt_variable))
    conf = run_conf(context)
    if conf.force or conf.dry_run:
        log.info("transforming and loading: the run conf asks for %s", "force" if conf.force else "a dry run")
    else:
        with CompanyContext(wecom_conn_id) as company:
            if company.loader.record_if_unchanged(context_run_record(manifest, context, digest)):
                return False
    return {"snapshot_digest": digest}


@task
@fails_once
def transform(manifest: dict[str, Any], pii: dict[str, str], pii_salt_variable: str) -> dict[str, int]:
    from wecom.pipeline import scope_tops, transform_staged  # noqa: PLC0415

    policy = pii_policy(pii, pii_salt_variable)
    return transform_staged(
        staged(manifest, "raw"), staged(manifest, "normalized"), manifest["corp_id"], policy, tops=scope_tops(manifest)
    )


@task
@fails_once
def quality_checks(manifest: dict[str, Any], counts: dict[str, int]) -> None:
    """Bad data does not get better on retry: fail at once (``fails_once``), naming the offending ids."""
    from wecom.pipeline import check_staged, scope_tops  # noqa: PLC0415

    check_staged(staged(manifest, "normalized"), scope_tops(manifest))


@task(trigger_rule="none_failed")
@fails_once
def summarize(wecom_conn_id: str, **context: Context) -> dict[str, Any]:
    """Log the run row as the database holds it (after a load, or a run skipped as covered or
    unchanged): what the next engineer will query."""
    with CompanyContext(wecom_conn_id) as company:
        row = logged_run_row(company, context)
    if row:
        emit_run_metrics(row)
    return {"status": row.get("status"), "drift_total": row.get("drift_total")}


def directory_sync_dag(company: Company) -> None:
    @dag(
        dag_id=company.dag_id,
        schedule=company.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        doc_md=__doc__,
        tags=["wecom", "directory", company.name],
        params={
            "dry_run": Param(False, type="boolean", description="compute and record the plan, change nothing"),
            "force": Param(False, type="boolean", description="extract even if a fresh snapshot exists"),
            "allow_mass_delete": Param(False, type="boolean", description="let this run pass the deletion guard"),
        },
        default_args={
            "retries": company.retries,
            "retry_delay": timedelta(minutes=1),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=30),
            "on_failure_callback": record_failure(company.wecom_conn_id),
        },
    )
    def wecom_directory_sync() -> None:
        schema = ensure_schema(company.wecom_conn_id)
        fresh = check_freshness(company.wecom_conn_id, company.freshness_minutes)
        manifest = WeComExtractOperator(
            task_id="extract", wecom_conn_id=company.wecom_conn_id, scope=company.scope.as_option()
        ).output
        compared = skip_if_unchanged(manifest, dict(company.pii), company.pii_salt_variable, company.wecom_conn_id)
        counts = transform(manifest, dict(company.pii), company.pii_salt_variable)
        checked = quality_checks(manifest, counts)
        result = WeComLoadOperator(
            task_id="load",
            wecom_conn_id=company.wecom_conn_id,
            company=company.name,
            manifest=manifest,
            compared=compared,
            max_delete_share=company.max_delete_share,
            max_delete_count=company.max_delete_count,
        )
        schema >> fresh >> manifest
        compared >> counts
        checked >> result >> summarize(company.wecom_conn_id)

    wecom_directory_sync()


# Broken entries get no DAGs here; dags/wecom_companies.py shows them as its import error.
for _company in read_companies(Variable.get(COMPANIES_VARIABLE, default=None)).companies:
    directory_sync_dag(_company)
