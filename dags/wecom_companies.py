"""
### WeCom companies configuration check

Defines no DAG. It fails to import, naming each broken entry of the Airflow Variable
`wecom_companies` and the key to fix, so that the problem is listed with Airflow's DAG import
errors (the UI's banner, `airflow dags list-import-errors`). The DAG files skip a broken
entry and still build the DAGs of every valid company: an import error in their own files
would mark all of their DAGs stale, the valid companies' too.

It also names each company whose target database connection cannot name its tables as Airflow
assets (an SQLite file given by a relative path, a PostgreSQL connection without host or
database): those DAGs stay, and their runs fail at `ensure_schema`, in the same line, until the
connection is fixed.
"""

from __future__ import annotations

from airflow.sdk import Variable

from wecom.companies import read_companies
from wecom.constants import COMPANIES_VARIABLE
from wecom.errors import CompanyConfigError
from wecom.hooks.wecom import target_location_problem

_config = read_companies(Variable.get(COMPANIES_VARIABLE, default=None))
_problems = []
if _config.problems:
    _problems.append(
        "Variable wecom_companies (Admin > Variables): what is named here gets no DAGs until it is fixed; "
        f"every other company's DAGs run as usual: {'; '.join(_config.problems)}"
    )
_targets = [problem for c in _config.companies if (problem := target_location_problem(c.wecom_conn_id))]
if _targets:
    _problems.append(f"assets of the directory tables: {'; '.join(_targets)}")
if _problems:
    raise CompanyConfigError(" | ".join(_problems))
