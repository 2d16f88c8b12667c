"""Names of the tests, benchmarks, scripts and the simulator (devtools/) that look unused to vulture because
a framework, not our code, reads or calls them.

`make lint`'s second vulture pass checks that code with everything as a caller, this list and the runtime's
(.ci/vulture_whitelist.py) together; the runtime package is checked on its own, without this list.
"""

# uvicorn: a server stops when this is set (the simulator's server, the tests' receiver).
_.should_exit

# The standard library calls these: HTML parsers, HTTP request handlers.
_.handle_starttag
_.handle_endtag
_.handle_data
_.do_GET
_.do_POST
_.log_message

# pytest: hooks, module marks, and a fixture requested only for what it sets up.
pytest_configure
pytest_collection_modifyitems
pytest_sessionfinish
pytestmark
airflow_metadata
