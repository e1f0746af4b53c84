#!/usr/bin/env bash
# `make airflow`: a local Airflow (API server, scheduler with LocalExecutor, DAG processor, triggerer) running this
# project's DAG, until Ctrl-C. `retrain airflow start` does the work (jobs/scheduling/local.py):
#   - AIRFLOW_PORT (default 8080) is the API server's port; the task and triggerer log servers take the next two,
#     and the URL the tasks call back ([api] base_url) follows it. Each port is checked free before anything starts.
#   - Its home is AIRFLOW_HOME (default .local/airflow, git-ignored; SQLite there), the DAG folder is dags/.
#   - A component that exits, or is not healthy within --ready-timeout, stops the others and fails with its log.
# The tasks read the pipeline's settings (DATABASE_URL, BACKEND_URL, ...) from this environment; the deploy token
# from the Airflow Variable ADMIN_JWT_TOKEN (`retrain airflow set-token`), else ADMIN_JWT_TOKEN here.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-.venv}
[[ $venv = /* ]] || venv=$root/$venv
export RETRAIN_HOME=$root
exec "$venv/bin/retrain" airflow start "$@"
