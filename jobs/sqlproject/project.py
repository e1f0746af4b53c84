"""Discover an SQL project on disk: its models, seeds, sources, vars, macros, property files and data tests.

A model is a file ``<folder>/<name>.sql`` anywhere in the project except ``macros/``, ``tests/`` and ``seeds/``;
its name comes from the file, so renaming the file renames the model. A seed is ``seeds/<name>.csv``. Names are
unique across models and seeds. Reading is all this module does: rendering and ordering happen in
:mod:`jobs.sqlproject.compiled`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import DependencyError
from jobs.sqlproject.config import PROJECT_FILE, Source, load_project_vars, load_sources, lookback_days
from jobs.sqlproject.folderconfig import (
    MODEL_CONFIG_KEYS,
    SEED_CONFIG_KEYS,
    FolderConfig,
    known_paths,
    parse_folder_configs,
)
from jobs.sqlproject.properties import ProjectProperties, load_properties
from jobs.sqlproject.yamlfile import check_keys, load_yaml

if TYPE_CHECKING:
    from jobs.run_context import RunContext

MACROS_DIR = "macros"
TESTS_DIR = "tests"
GENERIC_TESTS_DIR = "tests/generic"
SEEDS_DIR = "seeds"
_NOT_MODEL_DIRS = {MACROS_DIR, TESTS_DIR, SEEDS_DIR}
PROJECT_KEYS = ("name", "vars", "models", "seeds")


@dataclass(frozen=True)
class Model:
    """One SQL model: its name (from the file), the file, and the folder it lives in (staging, features, ...)."""

    name: str
    path: Path
    folder: str
    #: folders from the project root down to the file, then the file's stem: ("features", "heart_features")
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Seed:
    """A CSV file of ``seeds/``, registered as a view for ``ref('name')``."""

    name: str
    path: Path


@dataclass(frozen=True)
class SqlProject:
    """Everything the runner needs to know about a project, read once."""

    root: Path
    models: Mapping[str, Model]
    sources: Mapping[str, Source]
    vars: Mapping[str, Any]
    macro_files: tuple[Path, ...] = ()
    singular_tests: tuple[Path, ...] = ()
    seeds: Mapping[str, Seed] = field(default_factory=dict)
    properties: ProjectProperties = field(default_factory=lambda: ProjectProperties({}, {}, {}))
    model_folder_configs: tuple[FolderConfig, ...] = ()
    seed_folder_configs: tuple[FolderConfig, ...] = ()
    #: ``name:`` of project.yml (dbt's project name, accepted as ref's first argument and atop ``models:``)
    name: str | None = None

    def relative(self, path: Path) -> str:
        """A path as the user sees it: relative to the project's parent (``sql/features/x.sql``)."""
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def window(self, ctx: RunContext) -> tuple[datetime, datetime]:
        """The run's data window: the ``lookback_days`` before ``ctx``'s interval end."""
        return ctx.window(lookback_days(self.vars))

    def model(self, name: str) -> Model:
        try:
            return self.models[name]
        except KeyError:
            raise DependencyError(
                f"There is no model named {name!r} in {self.root}. Models: {', '.join(sorted(self.models))}."
            ) from None


def discover_models(root: Path) -> dict[str, Model]:
    """Every ``*.sql`` outside ``macros/`` and ``tests/``; a duplicate name is an error naming both files."""
    models: dict[str, Model] = {}
    for path in sorted(root.rglob("*.sql")):
        relative = path.relative_to(root)
        if relative.parts[0] in _NOT_MODEL_DIRS or any(part.startswith(".") for part in relative.parts):
            continue
        name = path.stem
        if name in models:
            raise DependencyError(
                f"Two models are named {name!r}: {models[name].path} and {path}. "
                "Model names come from file names and must be unique; rename one of the files."
            )
        folder = relative.parts[0] if len(relative.parts) > 1 else ""
        models[name] = Model(name=name, path=path, folder=folder, parts=relative.with_suffix("").parts)
    return models


def discover_seeds(root: Path, models: Mapping[str, Model]) -> dict[str, Seed]:
    """Every ``seeds/**/*.csv``; a name shared with a model (or another seed) is an error naming both files."""
    seeds: dict[str, Seed] = {}
    for path in sorted((root / SEEDS_DIR).rglob("*.csv")):
        name = path.stem
        other = models[name].path if name in models else seeds[name].path if name in seeds else None
        if other is not None:
            raise DependencyError(
                f"Two nodes are named {name!r}: {other} and {path}. ref() names must be unique; rename one file."
            )
        seeds[name] = Seed(name=name, path=path)
    return seeds


def load_project(root: Path, vars_overrides: Mapping[str, Any] | None = None) -> SqlProject:
    """Read the project at ``root`` (the folder holding ``sources.yml``)."""
    root = root.resolve()
    sources = load_sources(root)
    models = discover_models(root)
    clash = sorted(set(models) & {f"source__{name}" for name in sources})
    if clash:
        raise DependencyError(f"Model name(s) {', '.join(clash)} clash with source view names; rename the model.")
    seeds = discover_seeds(root, models)

    def relative(path: Path) -> str:
        return SqlProject(root, {}, {}, {}).relative(path)

    project_file = root / PROJECT_FILE
    document = load_yaml(project_file) if project_file.is_file() else {}
    file = relative(project_file)
    check_keys(document, PROJECT_KEYS, file, "project.yml")
    name = document.get("name")
    model_configs = parse_folder_configs(
        document.get("models"),
        name,
        known_paths(root, [m.path for m in models.values()]),
        MODEL_CONFIG_KEYS,
        file,
        "models",
    )
    seed_configs = parse_folder_configs(
        document.get("seeds"),
        name,
        known_paths(root / SEEDS_DIR, [s.path for s in seeds.values()]),
        SEED_CONFIG_KEYS,
        file,
        "seeds",
    )
    return SqlProject(
        root=root,
        models=models,
        sources=sources,
        vars=load_project_vars(root, vars_overrides),
        macro_files=tuple(sorted((root / MACROS_DIR).rglob("*.sql")))
        + tuple(sorted((root / GENERIC_TESTS_DIR).glob("*.sql"))),
        singular_tests=tuple(sorted((root / TESTS_DIR).glob("*.sql"))),
        seeds=seeds,
        properties=load_properties(root, set(models), set(seeds), relative),
        model_folder_configs=tuple(model_configs),
        seed_folder_configs=tuple(seed_configs),
        name=name,
    )
