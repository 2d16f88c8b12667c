"""Names of the runtime package (plugins/, dags/) that look unused to vulture because something outside our
code reads or calls them.

vulture checks the runtime code on its own ([tool.vulture] in pyproject.toml): tests, benchmarks, scripts
and the simulator are not callers, so a function only they call is reported as dead. A name here counts
as used everywhere; list only names whose caller is outside the project, with who calls them. Test and
tool code has its own list (.ci/vulture_whitelist_dev.py).
"""

# Airflow: the provider and plugin entry points (named in pyproject.toml), the notifier the provider info
# lists for DAG authors, connection form and hook attributes, templated fields, deferral callbacks,
# notifier and plugin interfaces.
get_provider_info
WeComPlugin
WeComRobotNotifier
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
# The OpenLineage provider: its DefaultExtractor calls the operators' method when a task completes or fails;
# the sqlite asset scheme's converter (provider info "asset-uris") and the parameter names it is called with.
_.get_openlineage_facets_on_complete
convert_sqlite_asset
lineage_context
task_instance

# A protocol parameter named as in Path.mkdir and ObjectStoragePath.mkdir, which wecom.store.stage_path calls
# by keyword.
exist_ok

# Other libraries read these: logging a filtered record's message; requests a Session's trust_env
# (wecom.api.session turns it off and reads the environment once).
_.msg
_.trust_env

# Enum members reached only by iterating the enum (runs.CHANGES = tuple(Change)).
_.INSERTED
_.UPDATED
_.REVIVED

# Snapshot's tables, read through dataclasses.fields(Snapshot) (wecom.pipeline.TABLE_FIELDS).
_.department_leaders
_.user_direct_leaders
_.department_closure
_.user_attributes

# Read only by the status page's Jinja templates (plugins/wecom/status/templates/).
_.recent_runs
_.anchor
_.y_label
_.x_ticks
_.last_delta
_.dead_events
_.failed_events
_.out_of_scope_events
