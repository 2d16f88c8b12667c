"""Which folders go into the wheel; everything else about the package is in pyproject.toml.

The ``wecom`` package comes from ``plugins/`` and the SQL files from ``include/sql/``, where the
team keeps them, shipped as the data package ``wecom.sql_files`` that ``wecom.sql`` reads through
``importlib.resources``. pyproject.toml cannot combine found packages with a folder mapped from
elsewhere, hence this file. The simulator is a test tool and stays out of the runtime wheel.
"""

from setuptools import find_packages, setup

SQL_PACKAGE = "wecom.sql_files"

setup(
    packages=[
        *find_packages("plugins", include=["wecom", "wecom.*"], exclude=["wecom.simulator", "wecom.simulator.*"]),
        SQL_PACKAGE,
    ],
    package_dir={"": "plugins", SQL_PACKAGE: "include/sql"},
    package_data={SQL_PACKAGE: ["*/*.sql"]},
    # Only what is listed: a stale egg-info manifest would otherwise slip the simulator back in.
    include_package_data=False,
)
