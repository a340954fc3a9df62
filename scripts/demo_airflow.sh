#!/bin/sh
# Run the annual DAC7 DAG once through a real Airflow: `airflow dags test`, in-process tasks,
# the SQLite metadata database of scripts/airflow_env.sh.
#
#     scripts/demo_airflow.sh [LOGICAL_DATE]      (default 2026-01-15: reports 2025)
#
# DAC7_CONFIG, DAC7_SOURCE_URL, DAC7_OUT_DIR and DAC7_STAGING_DIR pass through to the tasks.
# Exits non-zero if the run or any task failed.
set -eu

DAC7_REPO=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd -P)
export DAC7_REPO
logical_date=${1:-2026-01-15}

# The venv's bin first: Airflow starts some of its components as a bare `airflow`.
if [ -x "$DAC7_REPO/.venv/bin/airflow" ]; then
    PATH="$DAC7_REPO/.venv/bin:$PATH"
    export PATH
fi
command -v airflow >/dev/null 2>&1 || { echo "demo_airflow.sh: no airflow on PATH (make the venv first)" >&2; exit 2; }

. "$DAC7_REPO/scripts/airflow_env.sh"
mkdir -p "$AIRFLOW_HOME"

# Migrate when the database is new or was migrated by another Airflow version. A stamp file
# saves the 2.4 s of an `airflow db check-migrations` process on every demo run.
airflow_python="$(dirname -- "$(command -v airflow)")/python"
version=$("$airflow_python" -c 'import importlib.metadata as m; print(m.version("apache-airflow-core"))' 2>/dev/null || echo unknown)
stamp="$AIRFLOW_HOME/.migrated-airflow-$version"
if [ ! -f "$AIRFLOW_HOME/airflow.db" ] || [ ! -f "$stamp" ]; then
    echo "Migrating the Airflow metadata database in $AIRFLOW_HOME (airflow $version) ..."
    log="$AIRFLOW_HOME/db-migrate.log"
    if ! airflow db migrate >"$log" 2>&1; then
        cat "$log" >&2
        echo "demo_airflow.sh: airflow db migrate failed (log: $log)" >&2
        exit 1
    fi
    rm -f "$AIRFLOW_HOME"/.migrated-airflow-*
    : >"$stamp"
fi

log="$AIRFLOW_HOME/dags-test-dac7_annual.log"
echo "airflow dags test dac7_annual $logical_date (log: $log)"
# `dags test` exits 1 when the run fails: then show the end of its log.
if airflow dags test dac7_annual "$logical_date" >"$log" 2>&1; then
    # one line per task; a task mapped per authority (render, validate, publish) says how many ran
    grep -E "\[DAG TEST\] end task|DagRun Finished" "$log" \
        | sed -E 's/^.*(task_id=[a-z_]+).*$/  done: \1/; s/^.*DagRun Finished.*(state=[a-z]+).*$/  dag run: \1/' \
        | awk '$0 != last { if (n) print last (n > 1 ? " (" n " mapped)" : ""); last = $0; n = 0 } { n++ }
               END { if (n) print last (n > 1 ? " (" n " mapped)" : "") }'
else
    tail -n 60 "$log" >&2
    echo "demo_airflow.sh: the dac7_annual run failed (full log: $log)" >&2
    exit 1
fi
