"""Machine learning pieces of the pipeline: recipes, the holdout split, metrics, the gate, the model store and the
admin tokens of the serving backend's reload (``tokens``).

Each module is small and has one job; the steps ``jobs.train`` and ``jobs.validate`` put them together. Nothing
here imports PySpark: the serving backend uses ``recipes``, ``store`` and ``tokens``.
"""
