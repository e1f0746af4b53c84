"""Machine learning pieces of the pipeline: recipes, the holdout split, metrics, the gate and the model store.

Each module is small and has one job; the steps ``jobs.train`` and ``jobs.validate`` put them together. Nothing
here imports PySpark.
"""
