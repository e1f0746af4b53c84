"""Seeds: small CSV reference tables of ``seeds/`` registered as temp views, so models ``ref('name')`` them.

Column types come from the seed's properties (dbt's ``config: column_types:``, or ``data_type`` of a column),
from ``+column_types`` under ``seeds:`` in ``project.yml``, or are inferred from the values: whole numbers are
``bigint``, other numbers ``double``, ``true``/``false`` ``boolean``, ISO dates ``date``, ISO date-times
``timestamp`` (hours, minutes and seconds may have one digit: ``2020-01-05 4:30:21``), anything else ``string``. A
column of dates in another spelling (``2020/01/05``) is an error naming the value, never silently text. An empty
field is NULL, and so is a field missing at the end of a short row (as in dbt). Reading a CSV is cheap, so
``retrain check`` registers seeds with their real rows.
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
from jobs.sqlproject.project import Seed, SqlProject

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# What Spark's CAST reads exactly: single-digit months, days, hours, minutes and seconds included (4:30:21).
_DATE = r"\d{4}-\d{1,2}-\d{1,2}"
_TIME = r"[ T]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?"
_PATTERNS = (
    ("bigint", re.compile(r"^[+-]?\d{1,18}$")),
    ("double", re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")),
    ("boolean", re.compile(r"^(true|false)$", re.I)),
    ("date", re.compile(rf"^{_DATE}$")),
    ("timestamp", re.compile(rf"^{_DATE}({_TIME})?$")),
)
#: a value a reader takes for a date or a time of day, in a spelling Spark's CAST does not read (2020/01/05,
#: 5.1.2020, 2020-01-05 4:30 PM): typed as text, it would compare as text
_LOOKS_LIKE_DATE = re.compile(r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T,].*)?$")


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


def unreadable_date(values: list[str]) -> int | None:
    """The index of the first value Spark would not read as a date or timestamp, in a column whose values mostly
    look like dates or timestamps; ``None`` for any other column.

    Such a column would be typed ``string`` and compared as text ('2020-01-05 10:00' < '2020-01-05 9:00'), with
    no error anywhere: dbt's reader would have parsed it.
    """
    timestamp = _PATTERNS[-1][1]
    present = [(i, v) for i, v in enumerate(values) if v != ""]
    dated = [i for i, v in present if timestamp.match(v) or _LOOKS_LIKE_DATE.match(v)]
    if not dated or 2 * len(dated) <= len(present):
        return None
    return next((i for i, v in present if not timestamp.match(v)), None)


def declared_types(project: SqlProject, seed: Seed) -> dict[str, str]:
    types = dict(config_for(seed.parts, project.seed_folder_configs).get("column_types") or {})
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
        lines = []
        for row in reader:
            if not row:
                continue
            if len(row) > len(header):
                raise SqlProjectError(
                    f"{where}, line {reader.line_num}: {len(row)} fields, but the header has {len(header)}. "
                    "Quote a value that holds the delimiter, or remove the extra fields."
                )
            rows.append(row + [""] * (len(header) - len(row)))  # as dbt's reader: missing fields are NULL
            lines.append(reader.line_num)
    declared = declared_types(project, seed)
    unknown = sorted(set(declared) - set(header))
    if unknown:
        raise SqlProjectError(
            f"{where}: column_types name column(s) {', '.join(unknown)} that the CSV does not have. "
            f"Columns: {', '.join(header)}."
        )
    columns = {name: declared.get(name) or infer_type([r[i] for r in rows]) for i, name in enumerate(header)}
    for i, name in enumerate(header):
        bad = None if name in declared else unreadable_date([r[i] for r in rows])
        if bad is not None:
            raise SqlProjectError(
                f"{where}, line {lines[bad]}: column {name!r} holds dates or timestamps, but {rows[bad][i]!r} is not "
                "one Spark reads (yyyy-mm-dd, optionally followed by h:mm[:ss[.fff]] and a zone), so the column "
                "would be text and compared as text. Write the values as yyyy-mm-dd [h:mm:ss], or give the column "
                f"a type in the seed's column_types (string keeps it as text): column_types: {{{name}: string}}."
            )
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
