"""The "WeCom Sync" status page, without Airflow: what an on-call engineer needs about each company.

``read`` queries one target database (``include/sql/status/``) into the
plain data of ``model``; ``view`` decides what the page says about each
company, ``charts`` where its SVG marks go, and ``page`` renders the
package's autoescaped Jinja2 templates (no script, no CDN: the page works
offline and behind strict CSPs). The Airflow plugin (``wecom.plugin``) only
adds authentication, finds the databases and companies, and supplies the
links into the Airflow UI.

The data names are re-exported here for the modules that share them (the
metrics, the task glue, the notifier); rendering lives in ``wecom.status.page``
so that importing the data does not load Jinja2.
"""

from wecom.status.model import (
    ConfiguredCompany,
    CorpStatus,
    DatabaseStatus,
    EventQueueStatus,
    WaitingCompany,
    airflow_run_url,
)
from wecom.status.read import event_queue_status, read_database, read_status, run_row

__all__ = [
    "ConfiguredCompany",
    "CorpStatus",
    "DatabaseStatus",
    "EventQueueStatus",
    "WaitingCompany",
    "airflow_run_url",
    "event_queue_status",
    "read_database",
    "read_status",
    "run_row",
]
