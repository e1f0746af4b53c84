"""The reference model-serving backend: predicts with the production models and reloads them on demand.

``serving.app:create_app(settings)`` builds the FastAPI app; ``retrain-serve`` (``python -m serving``) runs it with
uvicorn. Importing this package imports nothing heavy: FastAPI and scikit-learn are imported by the modules that need
them. It installs on its own (``pip install 'retrain[serving]'``, no Spark): it imports the Spark-free core of
``jobs`` (settings, errors, ``jobs.ml`` recipes, store and tokens), and ``jobs`` never imports it.
"""
