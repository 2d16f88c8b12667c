"""
### WeCom callback deltas

Applies the contact-change callbacks that the receiver stored in `wecom_callback_events`
to the directory tables, within seconds of their arrival, between full syncs.

`ensure_schema` → `wait_for_callbacks` → `apply_callbacks` → `summarize`

* **wait_for_callbacks** checks once and otherwise *defers*: the trigger polls the events table
  from the triggerer (no worker slot is held while nothing happens) and fires as soon as
  events are pending, or failed with attempts left. After `[wecom] callback_wait_timeout` (default
  an hour) without events it skips the run, and the next one starts waiting again.
* **apply_callbacks** takes the ready events of each member and department in CreateTime order,
  folds them, fetches the entities whose events carry only ids (within the rate limits; a
  60111/60123 answer soft-deletes; a secret refused with 48009/48002/60011 applies the events
  from the ids they carry and keeps every other field), writes current and history tables
  (history `valid_from` is the event's CreateTime) and records a `wecom_sync_runs` row of kind
  `delta`. Events no newer than the last complete snapshot are `superseded`; a failing entity's
  events are `failed` and retried by later runs, `dead` after `[wecom] callback_max_attempts`
  (default 5) attempts. An event naming an unknown department, a NewUserID another live member
  holds, or a move making a department cycle waits the same attempts (what resolves it may
  still arrive), then is `dead` with the reason in `last_error`. With a department `scope`
  (`wecom_companies`), a member or department that moves out of it leaves it (`out_of_scope`),
  one that moves in is created from its event and a fetch, and events about entities outside it
  end as `out_of_scope`, the reason in `last_error`: recorded, not applied. Each table the apply
  changed gets one Airflow asset event (through the company's asset alias `wecom_directory`),
  however many events it applied; an apply that changed nothing emits none (docs/data-platform.md).
* **summarize** logs the run row and the queue, and alerts when events died.

Schedule `@continuous` with one active run: a new run starts waiting the moment the previous one
ends, so an event is applied about one poll interval (`[wecom] callback_poll_interval`, default 5 s) after
it is stored. Every task is safe to clear and rerun: applied events are never applied twice.
Connections per company (Airflow Variable `wecom_companies`): the `wecom` connection
(`wecom_default`) and the target database (`wecom_target_db`). The fetches use the connection
named by the `wecom` connection's `fetch_conn_id` extra when set (e.g. the contact-sync secret).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Context, Variable, dag, task

from wecom.airflow_tasks import logged_run_row, record_failure, report_callback_queue
from wecom.companies import Company, read_companies
from wecom.company_context import CompanyContext
from wecom.constants import COMPANIES_VARIABLE
from wecom.operators.apply_callbacks import WeComApplyCallbacksOperator
from wecom.sensors.callback_events import CallbackEventsSensor
from wecom.task_failures import fails_once

DAG_ID = "wecom_callback_deltas"


@task
@fails_once
def ensure_schema(wecom_conn_id: str) -> None:
    """Create missing tables, so the sensor can poll a fresh database; a database that cannot be reached
    fails here, in one line (see ``CompanyContext.ensure_schema``)."""
    with CompanyContext(wecom_conn_id) as company:
        company.ensure_schema()


@task
@fails_once
def summarize(result: dict[str, Any], wecom_conn_id: str, **context: Context) -> dict[str, int]:
    """Log the run row as the database holds it, update the queue gauges, alert on dead events."""
    with CompanyContext(wecom_conn_id) as company:
        logged_run_row(company, context)
        report_callback_queue(company, context, newly_dead=result["newly_dead"])
    return result["events"]


def callback_deltas_dag(company: Company) -> None:
    @dag(
        dag_id=company.dag_id_for(DAG_ID),
        schedule="@continuous",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        doc_md=__doc__,
        tags=["wecom", "callbacks", company.name],
        default_args={
            "retries": company.retries,
            "retry_delay": timedelta(seconds=30),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=10),
            "on_failure_callback": record_failure(company.wecom_conn_id, kind="delta"),
        },
    )
    def wecom_callback_deltas() -> None:
        waiting = CallbackEventsSensor(
            task_id="wait_for_callbacks",
            wecom_conn_id=company.wecom_conn_id,
            soft_fail=True,
        )
        result = WeComApplyCallbacksOperator(
            task_id="apply_callbacks",
            wecom_conn_id=company.wecom_conn_id,
            company=company.name,
            pii=company.pii,
            pii_salt_variable=company.pii_salt_variable,
            scope=company.scope.as_option(),
        )
        ensure_schema(company.wecom_conn_id) >> waiting >> result
        summarize(result.output, company.wecom_conn_id)

    wecom_callback_deltas()


# Broken entries get no DAGs here; dags/wecom_companies.py shows them as its import error.
for _company in read_companies(Variable.get(COMPANIES_VARIABLE, default=None)).companies:
    callback_deltas_dag(_company)
