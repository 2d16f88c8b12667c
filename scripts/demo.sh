#!/usr/bin/env bash
# `make demo`: the full-sync DAG end to end on the embedded default.
# Starts the WeCom simulator with a generated company, runs `wecom_directory_sync`
# through Airflow's own test runner into a SQLite file, and prints what landed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
DEMO=$ROOT/var/demo
MEMBERS=${DEMO_MEMBERS:-2000}
DEPARTMENTS=${DEMO_DEPARTMENTS:-150}

export AIRFLOW_HOME=$ROOT/var/airflow-home
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$AIRFLOW_HOME/airflow.db
export AIRFLOW__WECOM__STAGING_URI=file://$DEMO/staging
mkdir -p "$AIRFLOW_HOME" "$DEMO"

echo "== Airflow metadata database in $AIRFLOW_HOME"
"$PY" -m airflow db migrate >"$DEMO/migrate.log" 2>&1 || { tail -20 "$DEMO/migrate.log"; exit 1; }

echo "== WeCom simulator: $MEMBERS members in $DEPARTMENTS departments"
SECRET=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
CORP_ID=wwdemo0000000001
coproc SIM { exec "$PY" -m wecom_simulator --port 0 --members "$MEMBERS" --departments "$DEPARTMENTS" \
    --corp-id "$CORP_ID" --secret "$SECRET" --latency-ms 5 2>"$DEMO/simulator.log"; }
trap 'kill $SIM_PID 2>/dev/null || true' EXIT
read -r -t 120 BASE_URL <&"${SIM[0]}" || { cat "$DEMO/simulator.log"; exit 1; }
echo "   listening on $BASE_URL"

export AIRFLOW_CONN_WECOM_DEFAULT=$("$PY" -c 'import json, sys; print(json.dumps({"conn_type": "wecom",
    "host": sys.argv[1], "login": sys.argv[2], "password": sys.argv[3]}))' "$BASE_URL" "$CORP_ID" "$SECRET")
export AIRFLOW_CONN_WECOM_TARGET_DB="{\"conn_type\": \"sqlite\", \"host\": \"$DEMO/wecom.db\"}"

# force: a rerun within the freshness window would otherwise be recorded as skipped
echo "== airflow dags test wecom_directory_sync (log: $DEMO/dag-run.log)"
if ! "$PY" -m airflow dags test wecom_directory_sync --conf '{"force": true}' >"$DEMO/dag-run.log" 2>&1; then
    grep -E "ERROR|Error|failed" "$DEMO/dag-run.log" | tail -20
    exit 1
fi
"$PY" scripts/demo_summary.py "$DEMO/wecom.db"
