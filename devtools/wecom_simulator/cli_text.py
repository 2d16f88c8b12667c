"""The words of ``python -m wecom_simulator``: its help's admin-route table and examples, and its startup text.

At start it prints everything a person needs to connect to it.

Its first line is the bare base URL (benchmarks and scripts read only that);
the rest names the credentials, a ready-to-paste Airflow connection in both
of Airflow's forms, the admin API with a ready-to-run edit, and where
callbacks go. The simulator's credentials are test values the user chose or
accepted, so printing them is the point, unlike a real deployment's.
"""

from __future__ import annotations

import json
import shlex
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from wecom_simulator.state import SimulatorState

CONN_ID = "wecom_default"
ENV_VAR = f"AIRFLOW_CONN_{CONN_ID.upper()}"
LAST_LINE = "Ctrl-C stops the simulator."

ADMIN_ROUTES = """\
admin API (JSON in and out, under BASE_URL):
  GET  /_sim/health, /_sim/stats         liveness; calls per endpoint, 45009 answers, directory size
  POST /_sim/reset_stats                 zero the counters and the rate-limit windows
  GET|PATCH /_sim/config                 every setting; PATCH changes any of them, e.g. {"latency_ms": 50}
  GET|POST /_sim/regime                  {"regime": "withheld", "callback_form"?: "ids_only"}
  POST /_sim/app_secrets                 {"secret": "...", "kind": "new_app"|"old_app"}: another secret gettoken takes
  PATCH /_sim/config {"visible_ranges": {"SECRET": [2]}}   that app secret sees only department 2's subtree
  GET|POST|DELETE /_sim/faults           {"spec": "user/get:errcode=48009:times=3"} (as --fault) or its fields
  POST /_sim/export_faults               {"kind": "wrong_md5"|"truncated"|"failed", "times"?: 1}: the next export jobs
  POST /_sim/expire_tokens               every token answers 42001 from now on
  POST /_sim/invalidate_cursors          every list_id cursor answers 50100 from now on
  GET|POST|DELETE /_sim/callbacks        {"url", "token", "encoding_aes_key", "verify"?: true, "duplicates"?: 1,
                                         "shuffle"?: true, "delay_s"?: 2}: where edits are pushed (as --callback-*)
  POST /_sim/callbacks/flush             answers once every queued callback was delivered ({"timeout"?: 10})
  GET|PATCH|DELETE /_sim/users/ID, POST /_sim/users         a member as user/get shows it; edit, move, rename
  GET|PATCH|DELETE /_sim/departments/ID, POST /_sim/departments
  GET /_sim/tags, GET|PATCH|DELETE /_sim/tags/ID, POST /_sim/tags     a tag as tag/get shows it; create, rename
  POST /_sim/tags/ID/members, POST /_sim/tags/ID/members/remove       {"userlist", "partylist"}: update_tag
  GET|DELETE /_sim/robot/messages, PUT /_sim/robot/keys     the group robot's inbox and its valid keys
every edit answers {"changes": [...]}, the change_contact events it caused, and pushes them when callbacks are on."""

EXAMPLES = """\
examples:
  python -m wecom_simulator                      1000 members on http://127.0.0.1:8081, corp wwtestcorp
  python -m wecom_simulator --members 20000 --departments 1500 --regime withheld --fault user/get:errcode=-1:times=5
  python -m wecom_simulator --callback-url http://127.0.0.1:8090/wecom/callback/wecom_default
  curl -X PATCH http://127.0.0.1:8081/_sim/users/USERID -d '{"position": "Lead"}'    then
  curl -X POST http://127.0.0.1:8081/_sim/callbacks/flush"""


def connection_extra(state: SimulatorState) -> dict[str, str]:
    """The extra a receiver needs to check and decrypt this simulator's callbacks; empty without callbacks."""
    callback = state.callbacks.config
    if callback is None:
        return {}
    return {"callback_token": callback.token, "callback_aes_secret": callback.encoding_aes_key}


def connection_json(base_url: str, state: SimulatorState) -> str:
    """``AIRFLOW_CONN_WECOM_DEFAULT``'s JSON form: host is the base URL, login the corp id, password the secret."""
    config = state.config
    conn: dict[str, Any] = {"conn_type": "wecom", "host": base_url, "login": config.corp_id, "password": config.secret}
    extra = connection_extra(state)
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


def connection_uri(base_url: str, state: SimulatorState) -> str:
    """The URI form: ``wecom://http://corp:secret@host:port``, Airflow's way to keep the host's scheme."""
    parts = urlsplit(base_url)
    credentials = f"{quote(state.config.corp_id, safe='')}:{quote(state.config.secret, safe='')}"
    extra = connection_extra(state)
    query = f"?{urlencode(extra)}" if extra else ""
    return f"wecom://{parts.scheme}://{credentials}@{parts.netloc}{query}"


def _callback_lines(state: SimulatorState) -> list[str]:
    callback = state.callbacks.config
    if callback is None:
        return [
            "callbacks: off; start with --callback-url URL, or POST /_sim/callbacks "
            '{"url": ..., "token": ..., "encoding_aes_key": ...}'
        ]
    return [
        f"callbacks: every /_sim/ edit is pushed as a sealed change_contact event to {callback.url}",
        f"  ({state.config.callback_form} form, sealed with the connection's callback_token and callback_aes_secret)",
    ]


def _example_edit(base_url: str, state: SimulatorState) -> list[str]:
    members = state.org.member_list()
    if not members:
        return []
    user_url = f"{base_url}/_sim/users/{quote(members[0].userid, safe='')}"
    return [
        "  edit a member; with callbacks on, the second call waits until its event was delivered:",
        f'  curl -X PATCH {user_url} -d \'{{"position": "Data engineer"}}\'',
        f"  curl -X POST {base_url}/_sim/callbacks/flush",
    ]


def startup_lines(base_url: str, state: SimulatorState, generated_s: float) -> list[str]:
    """The startup text, one string per line, the base URL first."""
    config = state.config
    faults = [fault.endpoint for fault in state.faults.pending()]
    lines = [
        base_url,
        f"WeCom simulator: {len(state.org.users)} members in {len(state.org.departments)} departments, "
        f"{len(state.org.tags)} tags (generated in {generated_s:.1f}s), regime {config.regime}",
        f"corp id: {config.corp_id}   secret: {config.secret}",
        f"Airflow connection {CONN_ID}, as an environment variable of every Airflow component:",
        f"  export {ENV_VAR}={shlex.quote(connection_json(base_url, state))}",
        "or in the metadata database, where the UI shows it:",
        f"  airflow connections add {CONN_ID} --conn-uri {shlex.quote(connection_uri(base_url, state))}",
        "the DAGs also read the target database connection wecom_target_db, e.g.",
        '  export AIRFLOW_CONN_WECOM_TARGET_DB=\'{"conn_type": "sqlite", "host": "/tmp/wecom.db"}\'',
        f"admin API: {base_url}/_sim/ (routes: python -m wecom_simulator --help)",
        *_example_edit(base_url, state),
        *_callback_lines(state),
    ]
    if faults:
        lines.append(f"faults waiting: {', '.join(faults)} (GET /_sim/faults shows what is left)")
    return [*lines, LAST_LINE]
