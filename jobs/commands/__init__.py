"""Command groups of the ``retrain`` CLI, one module each, registered by :mod:`jobs.cli`."""
