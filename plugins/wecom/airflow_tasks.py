"""Glue between Airflow's task context and the pure pipeline: engines, run rows, failures."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Context, ObjectStoragePath, Variable
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk.log import mask_secret
from airflow.sdk.observability.stats import Stats
from sqlalchemy.exc import SQLAlchemyError

from wecom import config, metrics
from wecom.directory.pii import PiiPolicy
from wecom.errors import PiiConfigError, RunConfError
from wecom.hooks.target import ConfigurationError, company_settings, ensure_target_schema, target_loader
from wecom.hooks.wecom import WeComHook
from wecom.notifications.wecom_robot import WeComRobotNotifier
from wecom.operators.extract import run_folder
from wecom.pipeline import run_record
from wecom.run_options import RunConf, covering_snapshot
from wecom.status import event_queue_status, run_row
from wecom.store.plan import LoadResult
from wecom.store.run_records import RunRecord
from wecom.store.run_spool import RunSpool
from wecom.store.staging import StagePath

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


def logged_run_row(wecom_conn_id: str, context: Context) -> dict[str, Any]:
    """The run's ``wecom_sync_runs`` row as the database holds it, logged (without the plan): what the
    next engineer will query. Empty when the run recorded nothing."""
    dag_run = context["dag_run"]
    row = target_loader(wecom_conn_id).runs.get(dag_run.dag_id, dag_run.run_id) or {}
    log.info("run summary:\n%s", "\n".join(f"{key:>24}: {value}" for key, value in row.items() if key != "plan"))
    return row


def context_run_record(manifest: dict[str, Any], context: Context, snapshot_digest: str | None) -> RunRecord:
    """The run-row facts of a full sync: the extraction manifest's and the Airflow context's."""
    return run_record(manifest, snapshot_digest=snapshot_digest, **_run_identity(context))


def record_failure(wecom_conn_id: str, kind: str = "full"):
    """An ``on_failure_callback`` that marks the run ``failed`` in ``wecom_sync_runs`` with the reason."""

    def callback(context: Context) -> None:
        ti = context["ti"]
        error = context.get("exception")
        try:
            corp_id = company_settings(wecom_conn_id).corp_id
            run, message = context_run(context, corp_id, kind), f"task {ti.task_id} failed: {error}"
            try:
                target_loader(wecom_conn_id).runs.record_failed(run, message)
            except SQLAlchemyError as db_error:
                spool = failed_run_spool(corp_id)
                spool.keep(run, message, datetime.now(UTC))
                log.warning(
                    "the target database of %r is unreachable (%s): the failed run is kept in %s and recorded by "
                    "the next run that reaches the database",
                    wecom_conn_id,
                    type(db_error).__name__,
                    spool.folder,
                )
        except ConfigurationError as config_error:  # the task's own failure already says it
            log.warning("could not record the failed run in wecom_sync_runs: %s", config_error)
        except Exception:  # the callback must never hide the task's own failure
            log.exception("could not record the failed run in wecom_sync_runs")
        report_failed_run(wecom_conn_id, context)

    return callback


def failed_run_spool(corp_id: str) -> RunSpool:
    """Where a company's failed runs wait while the target database is down (its staging folder)."""
    return RunSpool(run_folder(config.staging_uri(), corp_id, "failed-runs", "pending"))


def ensure_schema_and_replay(wecom_conn_id: str) -> None:
    """Create what is missing (``ensure_target_schema``), then record the failed runs that waited for the
    database."""
    loader = ensure_target_schema(wecom_conn_id)
    if written := failed_run_spool(WeComHook(wecom_conn_id).settings.corp_id).replay(loader):
        log.info("recorded %d failed run(s) that waited for the target database", written)


def report_failed_run(wecom_conn_id: str, context: Context) -> None:
    """Metrics for the recorded failure, and a robot alert: "deletion guard tripped" or "run failed"."""
    dag_run = context["dag_run"]
    status = "failed"
    try:
        row = target_loader(wecom_conn_id).runs.get(dag_run.dag_id, dag_run.run_id)
        if row:
            status = row["status"]
            emit_run_metrics(row)
    except (ConfigurationError, SQLAlchemyError) as error:  # the task's failure says why, with the traceback
        log.warning("could not emit the failed run's metrics: %s", type(error).__name__)
    except Exception:
        log.exception("could not emit the failed run's metrics")
    title = "deletion guard tripped" if status == "guard_tripped" else "run failed"
    _alert(WeComRobotNotifier(wecom_conn_id=wecom_conn_id, title=title), context)


def emit_run_metrics(row: dict[str, Any]) -> None:
    """A ``wecom_sync_runs`` row as ``wecom.*`` metrics through Airflow's metrics layer."""
    metrics.emit_run(Stats, run_row(row))


def callback_fetch_hook(wecom_conn_id: str) -> WeComHook:
    """The hook whose secret the callback applier completes ids-only events with (user/get,
    department/get): the connection's ``fetch_conn_id`` when set, else the connection itself."""
    hook = WeComHook(wecom_conn_id)
    fetch_conn_id = hook.settings.fetch_conn_id
    if fetch_conn_id is None or fetch_conn_id == wecom_conn_id:
        return hook
    fetch_hook = WeComHook(fetch_conn_id)
    if fetch_hook.settings.corp_id != hook.settings.corp_id:
        raise AirflowFailException(
            f"connection {wecom_conn_id!r}: fetch_conn_id {fetch_conn_id!r} is a connection of corp "
            f"{fetch_hook.settings.corp_id!r}, not {hook.settings.corp_id!r}; name a connection of the same corp"
        )
    return fetch_hook


def report_callback_queue(wecom_conn_id: str, context: Context, newly_dead: int = 0) -> None:
    """For the callback DAG: queue gauges (pending, failed, dead, lag), and a robot alert when events died."""
    corp_id = WeComHook(wecom_conn_id).settings.corp_id
    with target_loader(wecom_conn_id).engine.connect() as conn:
        queue = event_queue_status(conn, corp_id)
    metrics.emit_queue(Stats, corp_id, queue, queue.lag_seconds(datetime.now(UTC)))
    if newly_dead:
        reason = (
            f"{newly_dead} callback event(s) gave up after repeated failures and are now dead "
            f"({queue.counts.get('dead', 0)} dead in all); the status page lists their errors"
        )
        _alert(WeComRobotNotifier(wecom_conn_id=wecom_conn_id, title="dead callback events", reason=reason), context)


def alert_if_degraded(wecom_conn_id: str, result: LoadResult, context: Context) -> None:
    """A robot alert when this snapshot lost field groups the previous one had: once, not every run."""
    if result.newly_degraded:
        reason = (
            f"WeCom no longer sends {', '.join(result.newly_degraded)}; the run succeeded and the stored "
            f"values are kept. {result.rights_advice}"
        )
        _alert(
            WeComRobotNotifier(wecom_conn_id=wecom_conn_id, title="rights shrank: run degraded", reason=reason), context
        )


def _alert(notifier: WeComRobotNotifier, context: Context) -> None:
    try:
        notifier(context)
    except Exception:  # an alert that cannot be sent must not fail or hide anything else
        log.exception("could not send the WeCom robot alert")


def run_conf(context: Context) -> RunConf:
    """The run's conf, validated: unknown keys fail the run (no retries) listing the allowed ones."""
    try:
        return RunConf.from_conf(context["dag_run"].conf)
    except RunConfError as error:
        raise AirflowFailException(str(error)) from None


def skip_if_covered(wecom_conn_id: str, freshness: timedelta, context: Context) -> None:
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
    corp_id = WeComHook(wecom_conn_id).settings.corp_id
    loader = target_loader(wecom_conn_id)
    latest = loader.runs.latest_snapshot(corp_id)
    now = datetime.now(UTC)
    if not covering_snapshot(latest, interval_end, now, freshness):
        log.info("extracting: latest snapshot %s, interval end %s", latest, interval_end)
        return
    message = (
        f"skipped: the snapshot observed {latest.isoformat()} already covers this run "
        f"(interval end {interval_end.isoformat()}, freshness window {freshness}); "
        'trigger with conf {"force": true} to extract anyway'
    )
    run = context_run(context, corp_id)
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
    except PiiConfigError as error:
        raise AirflowFailException(f"{error} (Variable {salt_variable!r})") from None
