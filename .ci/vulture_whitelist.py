"""Names that look unused to vulture because a framework, not our code, reads or calls them.

vulture reads this file with the code (see [tool.vulture] in pyproject.toml); a name here counts
as used everywhere, so list only names whose caller is outside the project, with who calls them.
"""

# Airflow: the provider and plugin entry points (named in pyproject.toml), connection form and
# hook attributes, templated fields, deferral callbacks, notifier and plugin interfaces.
get_provider_info
WeComPlugin
_.on_load
_.fastapi_root_middlewares
_.conn_name_attr
_.hook_name
_.test_connection
_.template_fields
_.execute_complete
_.serialize
_.notify
_.fastapi_apps
_.external_views
# the OpenLineage provider's operator method (its DefaultExtractor calls it when a task completes or fails)
_.get_openlineage_facets_on_complete
# the sqlite asset scheme's OpenLineage converter (provider info "asset-uris"), called by the OpenLineage provider
convert_sqlite_asset

# requests reads a Session's trust_env (wecom.api.session turns it off and reads the environment once)
_.trust_env

# Parameters whose names must match another library's signature: Airflow's Stats, Path.mkdir,
# the OpenLineage provider's asset converters.
rate
exist_ok
lineage_context
task_instance

# Enum members reached by iterating the enum (runs.CHANGES = tuple(Change)).
_.INSERTED
_.UPDATED
_.DELETED
_.REVIVED

# Read only by the status page's Jinja templates (plugins/wecom/status/templates/).
_.recent_runs
_.anchor

# uvicorn: a server stops when this is set.
_.should_exit

# The standard library calls these: context managers, logging filters, HTML parsers, HTTP handlers.
exc_type
tb
_.msg
_.handle_starttag
_.handle_endtag
_.handle_data
_.do_GET
_.do_POST
_.log_message

# pytest: hooks, module marks, and fixtures requested only for what they set up.
pytest_configure
pytest_collection_modifyitems
pytest_sessionfinish
pytestmark
airflow_metadata
