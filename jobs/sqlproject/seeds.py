"""Seeds: small CSV reference tables of ``seeds/`` registered as temp views, so models ``ref('name')`` them.

Column types come from the seed's properties (dbt's ``config: column_types:``, or ``data_type`` of a column),
from ``+column_types`` under ``seeds:`` in ``project.yml``, or are inferred from the values: whole numbers are
``bigint``, other numbers ``double``, ``true``/``false`` ``boolean``, ISO dates ``date``, ISO date-times
``timestamp``, anything else ``string``. An empty field is NULL. Reading a CSV is cheap, so ``retrain check``
registers seeds with their real rows.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.errors import SqlProjectError
from jobs.spark.messages import first_line
from jobs.sqlproject.folderconfig import config_for
from jobs.sqlproject.project import SEEDS_DIR, Seed, SqlProject

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_PATTERNS = (
    ("bigint", re.compile(r"^[+-]?\d{1,18}$")),
    ("double", re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")),
    ("boolean", re.compile(r"^(true|false)$", re.I)),
    ("date", re.compile(r"^\d{4}-\d{2}-\d{2}$")),
    ("timestamp", re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")),
)


@dataclass(frozen=True)
class SeedTable:
    seed: Seed
    columns: Mapping[str, str]  # name -> Spark type
    rows: tuple[tuple[str | None, ...], ...]


def infer_type(values: list[str]) -> str:
    present = [v for v in values if v != ""]
    if not present:
        return "string"
    for type_, pattern in _PATTERNS:
        if all(pattern.match(v) for v in present):
            return type_
    return "string"


def declared_types(project: SqlProject, seed: Seed) -> dict[str, str]:
    relative = seed.path.relative_to(project.root / SEEDS_DIR).with_suffix("").parts
    types = dict(config_for(relative, project.seed_folder_configs).get("column_types") or {})
    props = project.properties.seeds.get(seed.name)
    if props is not None:
        unknown = sorted(set(props.config) - {"column_types", "tags", "delimiter"})
        if unknown:
            raise SqlProjectError(
                f"{props.config_where}: unknown seed config {', '.join(unknown)}. "
                "Allowed: column_types, delimiter, tags."
            )
        types.update({c.name: c.data_type for c in props.columns if c.data_type})
        types.update(props.config.get("column_types") or {})
    return {str(k): str(v) for k, v in types.items()}


def read_seed(project: SqlProject, seed: Seed) -> SeedTable:
    where = project.relative(seed.path)
    props = project.properties.seeds.get(seed.name)
    delimiter = str((props.config.get("delimiter") if props else None) or ",")
    with seed.path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if not header or any(not h.strip() for h in header):
            raise SqlProjectError(f"{where}: a seed needs a header row naming every column.")
        header = [h.strip() for h in header]
        rows = []
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise SqlProjectError(f"{where}, line {number}: {len(row)} fields, but the header has {len(header)}.")
            rows.append(row)
    declared = declared_types(project, seed)
    unknown = sorted(set(declared) - set(header))
    if unknown:
        raise SqlProjectError(
            f"{where}: column_types name column(s) {', '.join(unknown)} that the CSV does not have. "
            f"Columns: {', '.join(header)}."
        )
    columns = {name: declared.get(name) or infer_type([r[i] for r in rows]) for i, name in enumerate(header)}
    return SeedTable(seed, columns, tuple(tuple(v if v != "" else None for v in r) for r in rows))


def register_seeds(spark: SparkSession, project: SqlProject) -> dict[str, SeedTable]:
    """Every seed as a temp view named after its file, its values cast to the declared or inferred types."""
    from pyspark.errors import PySparkException
    from pyspark.sql.types import StringType, StructField, StructType

    tables = {}
    for seed in project.seeds.values():
        table = read_seed(project, seed)
        text = StructType([StructField(name, StringType(), True) for name in table.columns])
        try:
            frame = spark.createDataFrame(list(table.rows), text).selectExpr(
                *(f"CAST(`{name}` AS {type_}) AS `{name}`" for name, type_ in table.columns.items())
            )
        except PySparkException as e:
            raise SqlProjectError(
                f"{project.relative(seed.path)}: the seed's column types are not valid: {first_line(e)}"
            ) from None
        frame.createOrReplaceTempView(seed.name)
        tables[seed.name] = table
    return tables
