"""The contenders of ``bench/run.py``; each runs as ``python -m bench.contenders.<name> DATABASE_URL OUT_DIR``."""
