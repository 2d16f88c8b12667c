"""The directory as data: which fields WeCom withheld, and what a run could not see (pure, no Airflow)."""
