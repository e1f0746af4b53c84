"""JSON-path health of a run: for every JSON key the models read, the share of the run's rows where it is missing,
null, or not usable as the type the model reads it as; and the keys the data holds that no model reads.

A misspelt key in a model (``cholestrol``) is not an error to Spark: the column is NULL on every row and the
imputer fills it in. Here it shows as missing from 100% of the rows. A backend that renamed a key shows twice: the
old name missing, the new one among the keys no model reads.

The keys and types come from the models' SQL (:mod:`jobs.sqlproject.jsonpaths`); the values from the run's raw
snapshot of the source the JSON column comes from, parsed once as a ``MAP<STRING,STRING>`` (so a present key with a
JSON null is told apart from an absent one). A value is not usable when the model's own expression (its TRY_CAST,
its accepted values) turns it into NULL. ``group_by``, a column of the source (the ``docs_json_group_by`` var, e.g.
``record_type``), breaks the shares down by its values: each kind of record sends its own keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobs.sqlproject.jsonpaths import VALUE, JsonRead, project_json_reads
from jobs.sqlproject.sources import snapshot_reader

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.run_context import RunFolder
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.config import Source

GROUP_BY_VAR = "docs_json_group_by"
ALL = "(all rows)"


@dataclass(frozen=True)
class Counts:
    """Of ``objects`` rows holding a JSON object: how many lack the key, hold null, hold a value the model cannot
    use."""

    objects: int = 0
    missing: int = 0
    null: int = 0
    unusable: int = 0

    def share(self, count: int) -> float | None:
        return count / self.objects if self.objects else None

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.objects, self.missing, self.null, self.unusable


@dataclass(frozen=True)
class KeyHealth:
    key: str
    type: str
    models: tuple[str, ...]
    reads: tuple[JsonRead, ...]
    groups: Mapping[str, Counts]

    @property
    def total(self) -> Counts:
        total = Counts()
        for counts in self.groups.values():
            total = total + counts
        return total

    @property
    def never_present(self) -> bool:
        """Missing from every JSON object of the run: a misspelt key, or one the backend stopped sending."""
        total = self.total
        return total.objects > 0 and total.missing == total.objects

    def present_in(self) -> list[str]:
        """The groups where at least one row holds the key."""
        return [g for g, c in self.groups.items() if c.objects and c.missing < c.objects]


@dataclass(frozen=True)
class ColumnHealth:
    """One column of JSON text of one source, as the run's snapshot holds it."""

    source: str
    column: str
    group_by: str | None
    rows: Mapping[str, int]  # rows per group
    not_objects: Mapping[str, int]  # rows per group whose text is no JSON object
    keys: tuple[KeyHealth, ...]
    unread: Mapping[str, Mapping[str, int]]  # key -> group -> rows holding it

    @property
    def groups(self) -> list[str]:
        return sorted(self.rows)


@dataclass(frozen=True)
class JsonHealth:
    columns: tuple[ColumnHealth, ...] = ()
    #: (model, column, why) for reads that could not be measured; {model: why} for models sqlglot could not read
    not_measured: tuple[tuple[str, str, str], ...] = ()
    skipped: Mapping[str, str] = field(default_factory=dict)

    def never_present(self) -> list[tuple[ColumnHealth, KeyHealth]]:
        return [(c, k) for c in self.columns for k in c.keys if k.never_present]


def _source_with_column(compiled: CompiledProject, model: str, column: str) -> Source | None:
    """The source the model's ``column`` comes from: the first source, among those the model or its ancestors
    read, that declares a column of that name."""
    project, seen, queue = compiled.project, set(), [model]
    while queue:
        name = queue.pop(0)
        if name in seen or name not in compiled.rendered:
            continue
        seen.add(name)
        rendered = compiled.rendered[name]
        for key in rendered.sources:
            source = project.sources.get(key)
            if source is not None and column in source.columns:
                return source
        queue.extend(rendered.refs)
    return None


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value_sql(column: str, key: str) -> str:
    if "." in key:
        return f"get_json_object({_quote(column)}, {_literal('$.' + key)})"
    return f"__m[{_literal(key)}]"


def _measure_column(
    spark: SparkSession,
    folder: RunFolder,
    source: Source,
    column: str,
    reads: Sequence[JsonRead],
    group_by: str | None,
) -> ColumnHealth:
    view = f"__json_health_{source.name}"
    # as the models read it: an incremental snapshot's refresh columns are the current ones, from its _changed/
    snapshot_reader(folder.raw)(spark, source).createOrReplaceTempView(view)
    group = f"COALESCE(CAST({_quote(group_by)} AS STRING), 'NULL')" if group_by else _literal(ALL)
    by_key: dict[tuple[str, str], list[JsonRead]] = {}
    for read in reads:
        by_key.setdefault((read.key, read.usage), []).append(read)
    measures = []
    for index, (key, usage) in enumerate(by_key):
        value = _value_sql(column, key)
        missing = f"{value} IS NULL" if "." in key else f"NOT map_contains_key(__m, {_literal(key)})"
        null = "FALSE" if "." in key else f"map_contains_key(__m, {_literal(key)}) AND {value} IS NULL"
        applied = usage.replace(VALUE, value)
        measures += [
            f"COUNT_IF(__m IS NOT NULL AND {missing}) AS m{index}",
            f"COUNT_IF(__m IS NOT NULL AND {null}) AS n{index}",
            f"COUNT_IF(__m IS NOT NULL AND {value} IS NOT NULL AND ({applied}) IS NULL) AS u{index}",
        ]
    parsed = (
        f"SELECT from_json({_quote(column)}, 'MAP<STRING,STRING>') AS __m, {group} AS __g, {_quote(column)} FROM {view}"
    )
    query = f"SELECT __g, COUNT(*) AS rows, COUNT(__m) AS objects, {', '.join(measures)} FROM ({parsed}) GROUP BY __g"
    rows, not_objects, counts = {}, {}, {}
    for row in spark.sql(query).collect():
        g = row["__g"]
        rows[g], not_objects[g] = row["rows"], row["rows"] - row["objects"]
        counts[g] = {i: Counts(row["objects"], row[f"m{i}"], row[f"n{i}"], row[f"u{i}"]) for i in range(len(by_key))}
    keys = []
    for index, ((key, _), found) in enumerate(by_key.items()):
        keys.append(
            KeyHealth(
                key=key,
                type=found[0].type,
                models=tuple(sorted({r.model for r in found})),
                reads=tuple(found),
                groups={g: counts[g][index] for g in sorted(counts)},
            )
        )
    read_keys = {read.key.split(".", 1)[0] for read in reads}
    unread: dict[str, dict[str, int]] = {}
    held = (
        f"SELECT __g, __k, COUNT(*) AS n FROM ({parsed}) LATERAL VIEW explode(map_keys(__m)) AS __k GROUP BY __g, __k"
    )
    for row in spark.sql(held).collect():
        if row["__k"] not in read_keys:
            unread.setdefault(row["__k"], {})[row["__g"]] = row["n"]
    spark.catalog.dropTempView(view)
    return ColumnHealth(
        source=source.name,
        column=column,
        group_by=group_by,
        rows=rows,
        not_objects=not_objects,
        keys=tuple(sorted(keys, key=lambda k: (not k.never_present, k.key))),
        unread={k: dict(sorted(v.items())) for k, v in sorted(unread.items())},
    )


def measure(spark: SparkSession, compiled: CompiledProject, folder: RunFolder) -> JsonHealth:
    """The health of every JSON key the models read, over the run's raw snapshots in ``folder``."""
    reads, skipped = project_json_reads(compiled.rendered[n] for n in compiled.order)
    group_by = compiled.project.vars.get(GROUP_BY_VAR)
    by_column: dict[tuple[str, str], list[JsonRead]] = {}
    sources: dict[str, Source] = {}
    not_measured = []
    for read in reads:
        source = _source_with_column(compiled, read.model, read.column)
        if source is None:
            not_measured.append((read.model, read.column, "no source it reads declares that column"))
        elif not folder.snapshot(source.name).is_dir():
            not_measured.append((read.model, read.column, f"no snapshot at {folder.snapshot(source.name)}"))
        else:
            sources[source.name] = source
            by_column.setdefault((source.name, read.column), []).append(read)
    columns = []
    for (name, column), found in by_column.items():
        source = sources[name]
        grouped = group_by if isinstance(group_by, str) and group_by in source.columns else None
        columns.append(_measure_column(spark, folder, source, column, found, grouped))
    return JsonHealth(tuple(columns), tuple(dict.fromkeys(not_measured)), skipped)
