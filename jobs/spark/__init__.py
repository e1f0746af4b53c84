"""Spark plumbing: the session builder and atomic Parquet writes."""
