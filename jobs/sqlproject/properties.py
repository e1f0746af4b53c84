"""Property files (dbt's ``schema.yml``): descriptions, columns, data tests, unit tests and config of models and seeds.

Two shapes are read, in any ``.yml`` of the project (``project.yml`` and ``sources.yml`` aside):

- dbt's: ``models:`` (and ``seeds:``) lists of entries with a ``name``, plus a top-level ``unit_tests:`` list whose
  entries name their ``model``;
- the short one: ``<folder>/<model>.yml`` beside ``<model>.sql`` (or a seed's ``.csv``) describing that one model.

Every key is either understood or an error naming the file, the line, the key and the keys allowed. Tests are
accepted under ``tests:`` and ``data_tests:`` (dbt >= 1.8) at model and column level. Descriptions may use
``{{ doc('name') }}`` with ``{% docs name %}`` blocks of ``.md`` files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from jobs.errors import SqlProjectError
from jobs.sqlproject.modelconfig import MODEL_CONFIG_KEYS as ALL_MODEL_CONFIG_KEYS
from jobs.sqlproject.yamlfile import YamlMap, check_keys, load_yaml, where

MODEL_KEYS = ("name", "description", "columns", "data_tests", "tests", "config", "meta")
SEED_KEYS = ("name", "description", "columns", "data_tests", "tests", "config", "meta")
COLUMN_KEYS = ("name", "description", "data_tests", "tests", "data_type", "meta")
UNIT_TEST_KEYS = ("name", "model", "description", "given", "expect", "vars", "ds", "overrides")
#: what a unit test's ``overrides:`` may set (dbt's ``macros: {is_incremental: true}``)
OVERRIDE_KEYS = ("macros",)
OVERRIDE_MACROS = ("is_incremental",)
GIVEN_KEYS = ("input", "rows", "format")
EXPECT_KEYS = ("rows", "format")
DBT_FILE_KEYS = ("version", "models", "seeds", "unit_tests")
#: dbt's other top-level keys of a property file: sources are read by jobs/sqlproject/config.py; the rest change
#: nothing here and are named in a notice
DBT_FILE_ALSO = {
    "sources": "",
    "exposures": "exposures are not built",
    "metrics": "the semantic layer is not built",
    "semantic_models": "the semantic layer is not built",
    "saved_queries": "the semantic layer is not built",
    "macros": "macro properties only describe macros",
    "analyses": "analyses are not built",
    "snapshots": "snapshots are not built",
    "groups": "groups and access are not enforced",
    "data_tests": "properties of singular tests are not read: set config() in the test's SQL",
}
SHORT_FILE_KEYS = ("description", "columns", "data_tests", "tests", "config", "meta", "unit_tests")
#: dbt's keys read for what they describe, besides those above
MODEL_ALSO = ("docs", "constraints", "access", "group")
COLUMN_ALSO = ("quote", "tags", "constraints")
SKIPPED_FILES = ("project.yml", "sources.yml")
MODEL_CONFIG_KEYS = ("materialized", "partition_by", "cache", "repartition", "tags")
SEED_CONFIG_KEYS = ("column_types", "delimiter", "tags")
_DOCS_BLOCK = re.compile(r"{%-?\s*docs\s+([A-Za-z_][A-Za-z0-9_]*)\s*-?%}(.*?){%-?\s*enddocs\s*-?%}", re.S)


@dataclass(frozen=True)
class TestSpec:
    """One test as written in YAML, with where it was written (``file, line N``)."""

    spec: Any
    where: str
    column: str | None = None


@dataclass(frozen=True)
class ColumnProperties:
    name: str
    description: str = ""
    data_type: str | None = None


@dataclass(frozen=True)
class NodeProperties:
    """What property files say about one model or seed."""

    name: str
    file: str
    description: str = ""
    columns: tuple[ColumnProperties, ...] = ()
    tests: tuple[TestSpec, ...] = ()
    unit_tests: tuple[tuple[Mapping[str, Any], str], ...] = ()  # (spec, where)
    config: Mapping[str, Any] = field(default_factory=dict)
    config_where: str = ""


@dataclass(frozen=True)
class ProjectProperties:
    models: Mapping[str, NodeProperties]
    seeds: Mapping[str, NodeProperties]
    docs: Mapping[str, str]

    def of(self, name: str) -> NodeProperties | None:
        return self.models.get(name) or self.seeds.get(name)


def load_docs(root: Path, relative) -> dict[str, str]:
    """``{% docs name %}...{% enddocs %}`` blocks of every ``.md`` file; a name defined twice is an error."""
    docs: dict[str, str] = {}
    seen: dict[str, str] = {}
    for path in sorted(root.rglob("*.md")):
        for match in _DOCS_BLOCK.finditer(path.read_text(encoding="utf-8")):
            name = match.group(1)
            if name in docs:
                raise SqlProjectError(f"The docs block {name!r} is defined twice: {seen[name]} and {relative(path)}.")
            docs[name], seen[name] = match.group(2).strip(), relative(path)
    return docs


def _description(value: Any, docs: Mapping[str, str], at: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SqlProjectError(f"{at}: a description must be text. Got {value!r} instead.")
    if "{{" not in value and "{%" not in value:
        return value.strip()

    def doc(name: str) -> str:
        if name not in docs:
            raise SqlProjectError(
                f"{at}: doc({name!r}) names no {{% docs %}} block in the project's .md files. "
                f"Docs: {', '.join(sorted(docs)) or 'none'}."
            )
        return docs[name]

    try:
        return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(value).render(doc=doc).strip()
    except jinja2.TemplateError as e:
        raise SqlProjectError(f"{at}: the description could not be rendered: {e.message}.") from e


def _list(value: Any, file: str, parent: Any, key: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SqlProjectError(f"{where(file, parent, key)}: {key!r} must be a list. Got {value!r} instead.")
    return value


def _tests(entry: Mapping, file: str, column: str | None) -> list[TestSpec]:
    specs = []
    for key in ("tests", "data_tests"):
        items = _list(entry.get(key), file, entry, key)
        for index, spec in enumerate(items):
            specs.append(TestSpec(spec, where(file, items, index), column))
    return specs


def _node(
    entry: Any, name: str, file: str, allowed: tuple[str, ...], docs: Mapping[str, str], config_keys: tuple[str, ...]
) -> NodeProperties:
    check_keys(entry, allowed, file, f"the properties of {name!r}", MODEL_ALSO)
    tests = _tests(entry, file, None)
    columns = []
    for index, column in enumerate(_list(entry.get("columns"), file, entry, "columns")):
        at = where(file, entry.get("columns"), index)
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            raise SqlProjectError(f"{at}: each column is a mapping with a 'name'. Got {column!r} instead.")
        check_keys(column, COLUMN_KEYS, file, f"column {column['name']!r} of {name!r}", COLUMN_ALSO)
        data_type = column.get("data_type")
        if data_type is not None and not isinstance(data_type, str):
            raise SqlProjectError(f"{where(file, column, 'data_type')}: data_type must be a Spark type name.")
        columns.append(ColumnProperties(column["name"], _description(column.get("description"), docs, at), data_type))
        tests.extend(_tests(column, file, column["name"]))
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise SqlProjectError(f"{where(file, entry, 'config')}: 'config' must be a mapping. Got {config!r} instead.")
    model_config = config_keys == MODEL_CONFIG_KEYS
    also = [k for k in ALL_MODEL_CONFIG_KEYS if k not in config_keys] if model_config else ["docs", "meta"]
    check_keys(config, config_keys, file, f"config of {name!r}", also)
    return NodeProperties(
        name=name,
        file=file,
        description=_description(entry.get("description"), docs, where(file, entry, "description")),
        columns=tuple(columns),
        tests=tuple(tests),
        config=config,
        config_where=where(file, entry, "config"),
    )


def _unit_tests(items: list, file: str, parent: Any, model: str | None) -> dict[str, list]:
    """Unit tests by model; in the short form ``model`` is the file's model, in dbt's each entry names it."""
    found: dict[str, list] = {}
    for index, spec in enumerate(_list(items, file, parent, "unit_tests")):
        at = where(file, items, index)
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise SqlProjectError(f"{at}: each unit test is a mapping with a 'name'. Got {spec!r} instead.")
        check_keys(spec, UNIT_TEST_KEYS, file, f"unit test {spec['name']!r}")
        target = spec.get("model", model)
        if not isinstance(target, str):
            raise SqlProjectError(f"{at}: unit test {spec['name']!r} needs 'model:', the model it tests.")
        for given in _list(spec.get("given"), file, spec, "given"):
            check_keys(given, GIVEN_KEYS, file, f"a 'given' item of unit test {spec['name']!r}")
            if given.get("format", "dict") != "dict":
                raise SqlProjectError(
                    f"{where(file, given, 'format')}: only format: dict (rows as mappings) is supported. "
                    f"Got {given.get('format')!r} instead."
                )
        overrides = spec.get("overrides") or YamlMap()
        check_keys(overrides, OVERRIDE_KEYS, file, f"'overrides' of unit test {spec['name']!r}")
        check_keys(
            overrides.get("macros") or YamlMap(), OVERRIDE_MACROS, file, f"overridden macros of {spec['name']!r}"
        )
        expect = spec.get("expect") or YamlMap()
        check_keys(expect, EXPECT_KEYS, file, f"'expect' of unit test {spec['name']!r}")
        if expect.get("format", "dict") != "dict":
            raise SqlProjectError(f"{where(file, expect, 'format')}: only format: dict is supported.")
        found.setdefault(target, []).append((spec, at))
    return found


def load_properties(
    root: Path,
    model_names: set[str],
    seed_names: set[str],
    relative,
    files: Sequence[Path] | None = None,
    notice: Callable[[str], None] | None = None,
    errors: list[SqlProjectError] | None = None,
) -> ProjectProperties:
    """Read every property file of the project (``files``, by default every ``.yml`` but the project's own files);
    a model or seed described twice is an error naming both files. With ``errors``, a file with an error is added
    there and the other files are read still (``retrain check`` reports them all)."""
    docs = load_docs(root, relative)
    models: dict[str, NodeProperties] = {}
    seeds: dict[str, NodeProperties] = {}
    unit_tests: dict[str, list] = {}

    def add(target: dict[str, NodeProperties], node: NodeProperties, known: set[str], kind: str, at: str) -> None:
        if node.name not in known:
            raise SqlProjectError(
                f"{at}: properties for {kind} {node.name!r}, which does not exist. "
                f"{kind.capitalize()}s: {', '.join(sorted(known)) or 'none'}."
            )
        if node.name in target:
            raise SqlProjectError(
                f"The {kind} {node.name!r} is described twice: in {target[node.name].file} and in {node.file}. "
                "Keep one."
            )
        target[node.name] = node

    if files is None:
        files = [
            path
            for path in sorted([*root.rglob("*.yml"), *root.rglob("*.yaml")])
            if str(path.relative_to(root)) not in SKIPPED_FILES
            and not any(part.startswith(".") for part in path.relative_to(root).parts)
        ]

    def read(path: Path) -> None:
        file = relative(path)
        document = load_yaml(path)
        if not isinstance(document, dict):
            raise SqlProjectError(
                f"{file}: a properties file is a mapping with 'models:' (dbt's shape) or the keys of the model "
                f"named after the file ({', '.join(SHORT_FILE_KEYS)})."
            )
        # (a short form's own data_tests: are the model's; dbt's top-level ones describe singular tests)
        shape_keys = ("version", "models", "seeds", *(key for key in DBT_FILE_ALSO if key != "data_tests"))
        dbt_shape = any(key in document for key in shape_keys)
        if dbt_shape or path.stem not in model_names | seed_names:
            check_keys(document, DBT_FILE_KEYS, file, "a properties file", DBT_FILE_ALSO)
            for key in document:
                if DBT_FILE_ALSO.get(key) and notice is not None:
                    notice(f"{where(file, document, key)}: {key!r} has no effect here: {DBT_FILE_ALSO[key]}.")
            for key, allowed, target, known, kind, config_keys in (
                ("models", MODEL_KEYS, models, model_names, "model", MODEL_CONFIG_KEYS),
                ("seeds", SEED_KEYS, seeds, seed_names, "seed", SEED_CONFIG_KEYS),
            ):
                items = _list(document.get(key), file, document, key)
                for index, entry in enumerate(items):
                    at = where(file, items, index)
                    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                        raise SqlProjectError(f"{at}: each entry of {key!r} is a mapping with a 'name'.")
                    add(target, _node(entry, entry["name"], file, allowed, docs, config_keys), known, kind, at)
            for name, specs in _unit_tests(document.get("unit_tests"), file, document, None).items():
                unit_tests.setdefault(name, []).extend(specs)
            return
        # The short form: <name>.yml beside <name>.sql or <name>.csv.
        is_seed = path.stem in seed_names and path.stem not in model_names
        node = _node(
            document, path.stem, file, SHORT_FILE_KEYS, docs, SEED_CONFIG_KEYS if is_seed else MODEL_CONFIG_KEYS
        )
        if is_seed:
            add(seeds, node, seed_names, "seed", file)
        else:
            add(models, node, model_names, "model", file)
        for name, specs in _unit_tests(document.get("unit_tests"), file, document, path.stem).items():
            unit_tests.setdefault(name, []).extend(specs)

    for path in files:  # each file read on its own: with ``errors``, a broken one does not hide the others
        try:
            read(path)
        except SqlProjectError as e:
            if errors is None:
                raise
            errors.append(e)

    for name, specs in unit_tests.items():
        if name not in model_names:
            raise SqlProjectError(
                f"{specs[0][1]}: unit test {specs[0][0]['name']!r} is for model {name!r}, which does not exist."
            )
        node = models.get(name) or NodeProperties(name=name, file=specs[0][1].split(",")[0])
        models[name] = NodeProperties(**{**node.__dict__, "unit_tests": tuple(node.unit_tests) + tuple(specs)})
    return ProjectProperties(models=models, seeds=seeds, docs=docs)
