# shellcheck shell=sh
# Local Airflow settings for this checkout. Source it, do not run it:
#
#     . scripts/airflow_env.sh        (from the repository root, e.g. in the Makefile)
#
# Everything lives inside the checkout (git-ignored .airflow/): a SQLite metadata database,
# logs and airflow.cfg. Nothing here needs the network. Set these before the first `airflow`
# command or `import airflow`: a bare import already creates $AIRFLOW_HOME/logs.

# The repository root: $DAC7_REPO if the caller knows it, else the sourced file's own location
# (bash, whose BASH_SOURCE names it), else the current directory if it holds this file.
if [ -n "${DAC7_REPO:-}" ]; then
    _dac7_repo=$DAC7_REPO
elif [ -n "${BASH_SOURCE:-}" ]; then
    _dac7_repo=$(CDPATH='' cd -- "$(dirname -- "$BASH_SOURCE")/.." && pwd -P)
elif [ -f "$PWD/scripts/airflow_env.sh" ] && [ -d "$PWD/dags" ]; then
    _dac7_repo=$PWD
else
    echo "airflow_env.sh: source me from the repository root, or set DAC7_REPO" >&2
    return 1 2>/dev/null || exit 1
fi

# DAC7_AIRFLOW_HOME puts it elsewhere (a test's throwaway Airflow).
export AIRFLOW_HOME="${DAC7_AIRFLOW_HOME:-$_dac7_repo/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$_dac7_repo/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$_dac7_repo/plugins"
# SQLite metadata database inside AIRFLOW_HOME (four slashes: an absolute path).
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
# Examples load by default (and DagBag(include_examples=) is gone in Airflow 3.3).
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# The default of 32 starts 32 idle LocalExecutor workers; 4 is plenty on a laptop or in CI.
export AIRFLOW__CORE__PARALLELISM=4
# New DAGs start paused otherwise, and a triggered run of a paused DAG stays queued.
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
# A local UI answers on this machine only (the default binds 0.0.0.0).
export AIRFLOW__API__HOST=127.0.0.1

unset _dac7_repo
