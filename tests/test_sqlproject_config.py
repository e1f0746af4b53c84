"""sources.yml's optional columns: how a source reads a database that lacks one (no services needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.errors import ConfigError, SqlProjectError
from jobs.sqlproject.config import load_sources
from tests.conftest import REPO_ROOT

QUERY_SOURCE = """
sources:
  - name: predictions
    query: SELECT r.id, r.verified_at, r.created_at FROM health_records r JOIN users u ON u.id = r.user_id
    partition_column: id
    window_column: created_at
    columns: {{id: bigint, verified_at: timestamp, created_at: timestamp}}
    optional_columns:
{optional}
"""


def sources(tmp_path: Path, text: str):
    (tmp_path / "sources.yml").write_text(text)
    return load_sources(tmp_path)


def test_the_projects_predictions_read_null_for_a_missing_verified_at() -> None:
    source = load_sources(REPO_ROOT / "sql")["predictions"]
    column = source.optional_columns["verified_at"]
    assert (column.table, column.postgres_type) == ("health_records", "timestamptz")
    assert "outcomes cannot be dated" in column.cost
    assert source.relation() == source.relation_sql and "WITH" not in source.relation()
    relation = source.relation(("verified_at",))
    # The query is kept as written; a CTE of the table's name supplies the column.
    assert relation.startswith(
        "(WITH health_records AS (SELECT *, NULL::timestamptz AS verified_at FROM health_records) SELECT r.id,"
    )
    assert source.query.strip() in relation and relation.endswith(") AS predictions_query")


def test_a_table_source_reads_its_own_table_with_a_null_column(tmp_path: Path) -> None:
    source = sources(
        tmp_path,
        """
sources:
  - name: outcomes
    table: raw.outcomes
    partition_column: id
    window_column: created_at
    columns: {id: bigint, created_at: timestamp, verified_at: timestamp, score: double}
    optional_columns:
      verified_at: {cost: "outcomes cannot be dated"}
      score: {}
""",
    )["outcomes"]
    assert source.optional_columns["verified_at"].table == "raw.outcomes"
    assert source.relation(("verified_at", "score")) == (
        "(SELECT *, NULL::timestamptz AS verified_at, NULL::double precision AS score FROM raw.outcomes) "
        "AS outcomes_table"
    )
    assert source.relation() == "raw.outcomes"


@pytest.mark.parametrize(
    ("optional", "error"),
    [
        ("      nope: {table: health_records}", "optional column 'nope' of source 'predictions' is not one of its"),
        ("      verified_at: {}", "needs 'table:', the table its query reads it from"),
        ("      verified_at: {table: public.health_records}", "must be a lower-case identifier"),
        ("      verified_at: {table: health_records, typo: 1}", "unknown key 'typo'"),
        ("      - verified_at", "must be a mapping of column name to"),
    ],
)
def test_a_wrong_optional_column_is_refused_with_the_reason(tmp_path: Path, optional: str, error: str) -> None:
    with pytest.raises((ConfigError, SqlProjectError), match=error):
        sources(tmp_path, QUERY_SOURCE.format(optional=optional))


def test_every_wrong_source_is_reported_at_once(tmp_path: Path) -> None:
    """`retrain check` says every error: a sources.yml with three wrong sources lists the three, each with its
    place, and the right one in between is read still."""
    text = """
sources:
  - name: first
    table: raw.first
    partition_column: id
    window_column: created_at
    columns: {id: bigint, created_at: timestamp}
    typo: 1
  - name: fine
    table: raw.fine
    partition_column: id
    window_column: created_at
    columns: {id: bigint, created_at: timestamp}
  - just a string
  - name: shop
    tables:
      - name: orders
        partition_column: id
        window_column: created_at
        columns: {id: bigint, created_at: timestamp}
        optional_columns: [nope]
"""
    with pytest.raises(ConfigError) as raised:
        sources(tmp_path, text)
    message = str(raised.value)
    assert message.startswith("3 errors in the project's sources; each is below.")
    assert "unknown key 'typo'" in message
    assert "sources.yml, line 14: each source must be a mapping with a 'name'. Got 'just a string' instead." in message
    assert "must be a mapping of column name to" in message


@pytest.mark.parametrize(
    ("columns", "line", "bad"),
    [
        ("{id: bigint, created_at: timestamp, confidence: dubble}", 7, "dubble"),
        ("{id: bigint, created_at: timestamp, tags: 'array<strng>'}", 7, "array<strng>"),
        ("{id: bigint, created_at: timestamp, name: 'varchar(20)'}", 7, "varchar(20)"),
    ],
)
def test_a_column_type_spark_cannot_read_is_refused_at_its_line(tmp_path: Path, columns: str, line: int, bad: str):
    """Before, a misspelt type passed `retrain ls` and crashed `check` and `test` with Spark's parse error."""
    text = f"""
sources:
  - name: predictions
    table: health_records
    partition_column: id
    window_column: created_at
    columns: {columns}
"""
    with pytest.raises(ConfigError) as raised:
        sources(tmp_path, text)
    message = str(raised.value)
    assert f"sources.yml, line {line}: column" in message and f"has type {bad!r}, which is not a Spark SQL" in message
    assert "decimal(p,s)" in message


def test_the_types_spark_reads_are_accepted() -> None:
    from jobs.sqlproject.config import is_spark_type

    for type_ in ("BIGINT", "decimal(10, 2)", "map<string, array<int>>", "struct<a: int, b string>", "date"):
        assert is_spark_type(type_), type_
    for type_ in ("dubble", "array<dubble>", "map<string>", "struct<a>", "char(3)"):
        assert not is_spark_type(type_), type_
