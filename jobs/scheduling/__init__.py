"""Operating the DAG under a real Airflow: its weeks, a local Airflow's components, and runs triggered through the
REST API. Nothing here imports Airflow, so ``retrain airflow trigger`` runs wherever the API can be reached."""
