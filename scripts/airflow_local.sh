#!/bin/sh
# A local Airflow for this checkout: `airflow standalone` (api-server, scheduler, dag-processor,
# triggerer) on 127.0.0.1, with the project's DAGs, the DAC7 view (plugins/) and the settings of
# scripts/airflow_env.sh (everything in the git-ignored .airflow/).
#
#     scripts/airflow_local.sh          (`make airflow` runs it with the demo data of `make demo`)
#
# AIRFLOW_PORT picks the port (default 8080), DAC7_AIRFLOW_HOME the Airflow home (default .airflow/). DAC7_CONFIG, DAC7_SOURCE_URL, DAC7_OUT_DIR,
# DAC7_STAGING_DIR and DAC7_LEDGER_URL pass through to the tasks and to the DAC7 view. The
# scheduler starts no scheduled run; runs triggered from the UI run.
#
# Logins: the simple auth manager with users of our own (never all-admins): `compliance` (role
# OP: the DAC7 view and its downloads, triggers runs), `approver` (OP: approves production
# filings, opens their pending files), `auditor` (VIEWER: the view's statuses and counts, no
# download) and `admin` (ADMIN: triggers runs, changes settings). Their passwords are generated
# once into .airflow/passwords.json (mode 0600) and printed at each start. The approvers of a
# production filing are DAC7_APPROVERS (default here: approver and compliance); the person who
# triggered a run is never asked to approve it (docs/desk-four-eyes.md).
#
# Ctrl-C (SIGINT) or SIGTERM to this script stops every component: it forwards them as SIGINT,
# the only signal on which `airflow standalone` stops its children (SIGTERM orphans them).
set -eu

DAC7_REPO=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd -P)
export DAC7_REPO

# The venv's bin first: `airflow standalone` starts its components as a bare `airflow`.
if [ -x "$DAC7_REPO/.venv/bin/airflow" ]; then
    PATH="$DAC7_REPO/.venv/bin:$PATH"
    export PATH
fi
command -v airflow >/dev/null 2>&1 || { echo "airflow_local.sh: no airflow on PATH (make the venv first)" >&2; exit 2; }
python=$(dirname -- "$(command -v airflow)")/python

. "$DAC7_REPO/scripts/airflow_env.sh"
mkdir -p "$AIRFLOW_HOME"

port=${AIRFLOW_PORT:-8080}
url="http://127.0.0.1:$port"
export AIRFLOW__API__PORT="$port"
# Task runners reach the api-server here (the default, localhost:8080, may resolve to ::1).
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$url/execution/"
# No scheduled runs: the annual DAG's latest due run would start at once and republish the demo
# output ("nothing to file", the demo run filed it all). Runs triggered from the UI still run.
export AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=False
# compliance (op): the DAC7 view and its downloads; approver (op): approves filings (answering a
# Human-in-the-loop request needs the role user or above); auditor (viewer): statuses and counts only
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="compliance:op,approver:op,auditor:viewer,admin:admin"
# Who is asked to approve a production filing (read by the gate task when it runs): these users
# minus the one who triggered the run. Airflow refuses anyone else's answer.
DAC7_APPROVERS=${DAC7_APPROVERS:-approver,compliance}
export DAC7_APPROVERS
passwords="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$passwords"
# The due-diligence verification (the `verify` task of dac7_due_diligence) in a one-slot pool of
# its own: named here for the DAG processor, created below once the metadata database is up (a
# pool that does not exist would keep the task waiting; parsing does not need it).
DAC7_VERIFICATION_POOL=${DAC7_VERIFICATION_POOL:-dac7_verification}
export DAC7_VERIFICATION_POOL

if "$python" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null; then
    echo "airflow_local.sh: something already listens on 127.0.0.1:$port; choose another port: AIRFLOW_PORT=8081 make airflow" >&2
    exit 1
fi

# A password for each user that has none yet (the file is kept: logins stay the same across starts).
"$python" - "$passwords" compliance approver auditor admin <<'EOF'
import json, os, secrets, sys
from pathlib import Path

path, users = Path(sys.argv[1]), sys.argv[2:]
known = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
missing = [u for u in users if u not in known]
if missing:
    known.update({u: secrets.token_urlsafe(12) for u in missing})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(known, f, indent=1)
os.chmod(path, 0o600)
EOF

log="$AIRFLOW_HOME/standalone.log"
echo "Starting Airflow (airflow standalone; log: $log) ..."
# A process group of its own, with SIGINT handled (a background job of a non-interactive shell
# starts with SIGINT ignored, and `set -m` needs a terminal): Ctrl-C reaches this script only,
# which forwards one SIGINT to standalone.
"$python" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setpgid(0, 0); os.execvp(sys.argv[1], sys.argv[1:])' \
    airflow standalone </dev/null >"$log" 2>&1 &
pid=$!

stopping=
stop() {
    # once: a second SIGINT would interrupt standalone while it stops its components
    [ -z "$stopping" ] || { echo "Still stopping Airflow ..."; return; }
    stopping=1
    echo
    echo "Stopping Airflow (SIGINT to airflow standalone, which stops its components) ..."
    kill -INT "$pid" 2>/dev/null || true
}
trap stop INT TERM

# Ready when the api-server answers its health check (about 10 s).
# (Without a proxy: one from the environment must not see 127.0.0.1.)
healthy='import sys, urllib.request as u; u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=2)'
while [ -z "$stopping" ] && ! "$python" -c "$healthy" "$url/api/v2/monitor/health" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 40 "$log" >&2
        echo "airflow_local.sh: airflow standalone exited before it was ready (log: $log)" >&2
        exit 1
    fi
    sleep 1
done

# The verification pool, unless it exists (its slots as an administrator set them are kept).
if [ -z "$stopping" ] && [ "$DAC7_VERIFICATION_POOL" != default_pool ] \
    && ! airflow pools get "$DAC7_VERIFICATION_POOL" >/dev/null 2>&1; then
    airflow pools set "$DAC7_VERIFICATION_POOL" 1 "DAC7 verification (VIES, TIN on the Web)" >/dev/null \
        || echo "airflow_local.sh: could not create the pool $DAC7_VERIFICATION_POOL (the verification waits for it)" >&2
fi

if [ -z "$stopping" ]; then
    "$python" - "$passwords" "$url" <<'EOF'
import json, os, sys

passwords, url = json.load(open(sys.argv[1])), sys.argv[2]
print(f"""
Airflow is ready: {url}
  DAC7 view:  {url}/plugin/dac7   (or {url}/dac7/ without Airflow's menu)
  login:      compliance / {passwords["compliance"]}   (op: the DAC7 view and its downloads)
              approver / {passwords["approver"]}   (op: approves production filings)
              auditor / {passwords["auditor"]}   (viewer: the DAC7 statuses and counts, no download)
              admin / {passwords["admin"]}   (admin: trigger runs)
  approvers:  {os.environ.get("DAC7_APPROVERS", "")}   (DAC7_APPROVERS; never the person who triggered a run)
  pool:       {os.environ.get("DAC7_VERIFICATION_POOL", "")}   (DAC7_VERIFICATION_POOL: the due-diligence verification)
  Ctrl-C stops Airflow.
""", flush=True)
EOF
fi

# `wait` returns early when a trapped signal arrives: wait until the job has really gone.
while kill -0 "$pid" 2>/dev/null; do
    wait "$pid" || true
done
echo "Airflow stopped."
