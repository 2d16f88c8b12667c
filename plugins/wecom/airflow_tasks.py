"""Glue between Airflow's task context and the pure pipeline: run rows, freshness, failures, alerts.

Each helper takes the task's ``CompanyContext`` (resolved once per task) rather than a connection id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context, ObjectStoragePath, Variable
from airflow.sdk.exceptions import AirflowSkipException
from airflow.sdk.log import mask_secret
from airflow.sdk.observability.stats import Stats
from sqlalchemy.exc import SQLAlchemyError

from wecom import config, metrics
from wecom.company_context import CompanyContext
from wecom.directory.pii import PiiPolicy
from wecom.errors import ConnectionConfigError, PiiConfigError
from wecom.run_options import RunConf, covering_snapshot
from wecom.runs import RunStatus
from wecom.scope import WHOLE_COMPANY, Scope
from wecom.status import event_queue_status, run_row
from wecom.store.plan import LoadResult
from wecom.store.run_records import RunRecord
from wecom.store.stage_path import StagePath

if TYPE_CHECKING:
    from wecom.callbacks.apply import DeltaResult

log = logging.getLogger(__name__)


def staged(manifest: dict[str, Any], step: str) -> StagePath:
    """A step's folder (``raw``, ``normalized``) inside the run folder the extract task chose."""
    return ObjectStoragePath(manifest["run_uri"]) / step


def _run_identity(context: Context) -> dict[str, Any]:
    """The run-row facts every run takes from the Airflow context."""
    dag_run = context["dag_run"]
    return {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "logical_date": context.get("logical_date"),
        "started_at": dag_run.start_date,
    }


def context_run(context: Context, corp_id: str, kind: str = "full") -> RunRecord:
    """The run-row facts the Airflow context gives, for runs without an extraction manifest."""
    return RunRecord(corp_id=corp_id, kind=kind, **_run_identity(context))


def logged_run_row(company: CompanyContext, context: Context) -> dict[str, Any]:
    """The run's ``wecom_sync_runs`` row as the database holds it, logged (without the plan): what the
    next engineer will query. Empty when the run recorded nothing."""
    dag_run = context["dag_run"]
    row = company.loader.runs.get(dag_run.dag_id, dag_run.run_id) or {}
    log.info("run summary:\n%s", "\n".join(f"{key:>24}: {value}" for key, value in row.items() if key != "plan"))
    return row


def context_run_record(manifest: dict[str, Any], context: Context, snapshot_digest: str | None) -> RunRecord:
    """The run-row facts of a full sync: the extraction manifest's and the Airflow context's."""
    # Imported here, as in the other helpers that need pandas or the WeCom client: the DAG files import
    # this module, and parsing them must stay light (tests/test_layers.py).
    from wecom.pipeline import run_record  # noqa: PLC0415

    return run_record(manifest, snapshot_digest=snapshot_digest, **_run_identity(context))


def record_failure(wecom_conn_id: str, kind: str = "full") -> Callable[[Context], None]:
    """An ``on_failure_callback`` that marks the run ``failed`` in ``wecom_sync_runs`` with the reason, emits
    its metrics and alerts the group robot: "deletion guard tripped" or "run failed"."""

    def callback(context: Context) -> None:
        try:
            company = CompanyContext(wecom_conn_id)
        except ConnectionConfigError as config_error:  # the task's own failure already says it
            log.warning("could not record the failed run in wecom_sync_runs: %s", config_error)
            return
        with company:
            status = record_failed_run(company, context, kind)
            company.alert(context, "deletion guard tripped" if status == RunStatus.GUARD_TRIPPED else "run failed")

    return callback


def record_failed_run(company: CompanyContext, context: Context, kind: str) -> str:
    """Mark the run ``failed`` (a failed run the database cannot take waits in the company's spool) and emit
    its metrics; the run's status as recorded (``guard_tripped`` stays). Never raises: the callback must not
    hide the task's own failure."""
    ti, dag_run = context["ti"], context["dag_run"]
    run, message = context_run(context, company.corp_id, kind), f"task {ti.task_id} failed: {context.get('exception')}"
    try:
        company.loader.runs.record_failed(run, message)
        row = company.loader.runs.get(dag_run.dag_id, dag_run.run_id)
    except SQLAlchemyError as db_error:
        spool = company.failed_runs
        spool.keep(run, message, datetime.now(UTC))
        log.warning(
            "the target database of %r is unreachable (%s): the failed run is kept in %s and recorded by "
            "the next run that reaches the database",
            company.conn_id,
            type(db_error).__name__,
            spool.folder,
        )
        return RunStatus.FAILED
    except ConnectionConfigError as config_error:
        log.warning("could not record the failed run in wecom_sync_runs: %s", config_error)
        return RunStatus.FAILED
    except Exception:
        log.exception("could not record the failed run in wecom_sync_runs")
        return RunStatus.FAILED
    if not row:
        return RunStatus.FAILED
    try:
        emit_run_metrics(row)
    except Exception:
        log.exception("could not emit the failed run's metrics")
    return row["status"]


def ensure_schema_and_replay(company: CompanyContext) -> None:
    """Create what is missing (``CompanyContext.ensure_schema``), then record the failed runs that waited for
    the database."""
    loader = company.ensure_schema()
    if written := company.failed_runs.replay(loader):
        log.info("recorded %d failed run(s) that waited for the target database", written)


def emit_run_metrics(row: dict[str, Any]) -> None:
    """A ``wecom_sync_runs`` row as ``wecom.*`` metrics through Airflow's metrics layer."""
    metrics.emit_run(Stats, run_row(row))


def apply_ready_events(
    company: CompanyContext, pii: PiiPolicy, context: Context, scope: Scope = WHOLE_COMPANY
) -> DeltaResult:
    """Apply the company's ready callback events (a ``delta`` run) within its department ``scope``, completing
    ids-only ones with the fetch connection's secret (``CompanyContext.fetch_hook``)."""
    from wecom.callbacks.apply import DeltaApplier  # noqa: PLC0415

    with company.fetch_hook().get_conn() as client:
        applier = DeltaApplier(
            company.engine,
            client,
            max_attempts=config.callback_max_attempts(),
            max_workers=company.settings.max_workers,
            pii=pii,
            scope=scope,
        )
        return applier.apply(context_run(context, company.corp_id, kind="delta"))


def report_callback_queue(company: CompanyContext, context: Context, newly_dead: int = 0) -> None:
    """For the callback DAG: queue gauges (pending, failed, dead, lag), and a robot alert when events died."""
    with company.engine.connect() as conn:
        queue = event_queue_status(conn, company.corp_id)
    metrics.emit_queue(Stats, company.corp_id, queue, queue.lag_seconds(datetime.now(UTC)))
    if newly_dead:
        reason = (
            f"{newly_dead} callback event(s) gave up after repeated failures and are now dead "
            f"({queue.counts.get('dead', 0)} dead in all); the status page lists their errors"
        )
        company.alert(context, "dead callback events", reason)


def alert_if_degraded(company: CompanyContext, result: LoadResult, context: Context) -> None:
    """A robot alert when this snapshot lost field groups the previous one had: once, not every run."""
    if result.newly_degraded:
        reason = (
            f"WeCom no longer sends {', '.join(result.newly_degraded)}; the run succeeded and the stored "
            f"values are kept. {result.rights_advice}"
        )
        company.alert(context, "rights shrank: run degraded", reason)


def run_conf(context: Context) -> RunConf:
    """The run's conf, validated: unknown keys fail the run listing the allowed ones (``RunConfError``, a
    permanent error: the task fails without its retries)."""
    return RunConf.from_conf(context["dag_run"].conf)


def skip_if_covered(company: CompanyContext, freshness: timedelta, context: Context) -> None:
    """Record the run as ``skipped`` and skip the rest when a snapshot already covers its interval.

    A forced run and a dry run always extract: a dry run is asked for its plan, which a skip never makes.
    Manual and API runs may have no logical date in Airflow 3: their interval
    ends when they were asked to run (``run_after``).
    """
    conf = run_conf(context)
    if conf.force or conf.dry_run:
        log.info("extracting whatever the freshness: the run conf asks for %s", "force" if conf.force else "a dry run")
        return
    dag_run = context["dag_run"]
    interval_end = context.get("data_interval_end") or dag_run.run_after
    loader = company.loader
    latest = loader.runs.latest_snapshot(company.corp_id)
    now = datetime.now(UTC)
    if not covering_snapshot(latest, interval_end, now, freshness):
        log.info("extracting: latest snapshot %s, interval end %s", latest, interval_end)
        return
    message = (
        f"skipped: the snapshot observed {latest.isoformat()} already covers this run "
        f"(interval end {interval_end.isoformat()}, freshness window {freshness}); "
        'trigger with conf {"force": true} to extract anyway'
    )
    run = context_run(context, company.corp_id)
    with loader.engine.begin() as conn:
        loader.runs.record(conn, run, status="skipped", observed_at=latest, finished_at=now, message=message)
    raise AirflowSkipException(message)


def pii_policy(option: Mapping[str, str], salt_variable: str) -> PiiPolicy:
    """The company's PII policy; the salt comes from an Airflow Variable (secrets backend) and is masked."""
    salt = None
    if "hash" in option.values():
        salt = Variable.get(salt_variable, default=None)
        if salt:
            mask_secret(salt)
    try:
        return PiiPolicy.from_option(option, salt)
    except PiiConfigError as error:  # permanent: the task fails without its retries
        raise PiiConfigError(f"{error} (Variable {salt_variable!r})") from None
