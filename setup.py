"""Which folders go into the wheel; everything else about the package is in pyproject.toml.

The ``wecom`` package comes from ``plugins/`` and the SQL files from ``include/sql/``, where the
team keeps them, shipped as the data package ``wecom.sql_files`` that ``wecom.store.sql`` reads through
``importlib.resources``. pyproject.toml cannot combine found packages with a folder mapped from
elsewhere, hence this file. The simulator (devtools/wecom_simulator) is a development tool outside
plugins/, so it is not in the runtime wheel.
"""

from pathlib import Path

from setuptools import find_packages, setup

SQL_PACKAGE = "wecom.sql_files"
# setuptools writes the egg-info beside the packages by default, in plugins/: that folder is on
# sys.path in Airflow and in tests, where a second copy of our metadata registers the plugin twice.
EGG_BASE = Path(__file__).resolve().parent / "build"
EGG_BASE.mkdir(exist_ok=True)

setup(
    packages=[
        *find_packages("plugins", include=["wecom", "wecom.*"]),
        SQL_PACKAGE,
    ],
    package_dir={"": "plugins", SQL_PACKAGE: "include/sql"},
    package_data={SQL_PACKAGE: ["*/*.sql"]},
    # Only what is listed: a stale egg-info manifest would otherwise add files from an older layout.
    include_package_data=False,
    options={"egg_info": {"egg_base": str(EGG_BASE)}},
)
