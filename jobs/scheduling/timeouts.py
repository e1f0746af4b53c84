"""The DAG's per-task time limits, and how long the deploy token must stay valid because of them.

Apart from the DAG's task module so that `retrain airflow set-token` can check a token without importing Airflow
(which would read, and create, an Airflow home of its own).
"""

from __future__ import annotations

from datetime import timedelta

#: per-task time limits; the deploy token must stay valid for the time the tasks up to deploy_models may take
TIMEOUTS = {
    "preflight": timedelta(minutes=5),
    "extract_data": timedelta(hours=1),
    "transform_data": timedelta(hours=1),
    "train_models": timedelta(hours=1),
    "validate_models": timedelta(minutes=30),
    "has_new_data": timedelta(minutes=5),
    "should_deploy": timedelta(minutes=5),
    "deploy_models": timedelta(minutes=15),
    "notify": timedelta(minutes=10),
}
TOKEN_VALID_FOR = sum(
    (TIMEOUTS[t] for t in ("extract_data", "transform_data", "train_models", "validate_models", "deploy_models")),
    timedelta(),
)
