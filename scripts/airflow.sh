#!/usr/bin/env bash
# `make airflow`: a local Airflow (standalone: API server, scheduler, DAG processor, triggerer) running this project's
# DAG. Its home is .local/airflow (git-ignored); the DAG folder is the project's dags/; no example DAGs.
# The tasks read the pipeline's settings (DATABASE_URL, BACKEND_URL, ADMIN_JWT_TOKEN, ...) from this environment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-.venv}
[[ $venv = /* ]] || venv=$root/$venv
export AIRFLOW_HOME=${AIRFLOW_HOME:-$root/.local/airflow}
export AIRFLOW__CORE__DAGS_FOLDER=$root/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT=${AIRFLOW_PORT:-8080}
export RETRAIN_HOME=$root
export PATH=$venv/bin:$PATH  # standalone starts its components as `airflow ...` subprocesses
mkdir -p "$AIRFLOW_HOME"

passwords=$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
cat <<MSG
Airflow home:  $AIRFLOW_HOME
DAG folder:    $AIRFLOW__CORE__DAGS_FOLDER (DAG model_retraining, paused until you unpause it)
Web UI:        http://localhost:$AIRFLOW__API__PORT  (starts in about a minute)
Log in as:     admin, with the password from $passwords
               (created on the first start; standalone also prints it below), e.g.:
               python3 -c 'import json; print(json.load(open("$passwords"))["admin"])'
Deploying needs ADMIN_JWT_TOKEN and BACKEND_URL in this shell's environment (see docs/operations.md, "Running under Airflow").
Stop with Ctrl-C.

MSG
exec "$venv/bin/airflow" standalone
