"""The model-retraining pipeline: extract, transform, train, validate, deploy, notify."""

__version__ = "0.1.0"
