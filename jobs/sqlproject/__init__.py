"""The dbt-style SQL project: sources, Jinja-templated Spark SQL models, macros, data tests."""
