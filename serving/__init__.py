"""The reference model-serving backend: predicts with the production models and reloads them on demand.

``serving.app:create_app(settings)`` builds the FastAPI app; ``retrain serve`` runs it with uvicorn. Importing this
package imports nothing heavy: FastAPI and scikit-learn are imported by the modules that need them.
"""
