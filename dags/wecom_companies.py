"""
### WeCom companies configuration check

Defines no DAG. It fails to import, naming each broken entry of the Airflow Variable
`wecom_companies` and the key to fix, so that the problem is listed with Airflow's DAG import
errors (the UI's banner, `airflow dags list-import-errors`). The DAG files skip a broken
entry and still build the DAGs of every valid company: an import error in their own files
would mark all of their DAGs stale, the valid companies' too.
"""

from __future__ import annotations

from airflow.sdk import Variable

from wecom.companies import read_companies
from wecom.constants import COMPANIES_VARIABLE
from wecom.errors import CompanyConfigError

_problems = read_companies(Variable.get(COMPANIES_VARIABLE, default=None)).problems
if _problems:
    raise CompanyConfigError(
        "Variable wecom_companies (Admin > Variables): what is named here gets no DAGs until it is fixed; "
        f"every other company's DAGs run as usual: {'; '.join(_problems)}"
    )
