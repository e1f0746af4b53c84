"""The contenders of ``bench/run.py``; each runs as ``python -m bench.contenders.<name> OUT_DIR``, with the
throwaway cluster's URL in ``BENCH_DATABASE_URL``."""
