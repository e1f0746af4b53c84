"""Discover an SQL project on disk: its models, seeds, sources, vars, macros, packages, property files and tests.

With a ``project.yml``, a model is a file ``<folder>/<name>.sql`` anywhere in the project except ``macros/``,
``tests/``, ``seeds/``, analyses, snapshots, dbt's own folders and packages; with a ``dbt_project.yml``, any
``.sql`` under its ``model-paths`` (``models/``). A model's name comes from the file, so renaming the file renames
the model. A seed is ``seeds/<name>.csv``. Names are unique across models and seeds. Reading is all this module
does: rendering and ordering happen in :mod:`jobs.sqlproject.compiled`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import DependencyError, SqlProjectError
from jobs.sqlproject.config import Source, load_project_vars, load_sources, lookback_days
from jobs.sqlproject.dbtcontext import Target
from jobs.sqlproject.folderconfig import SEED_CONFIG_KEYS, FolderConfig, parse_folder_configs
from jobs.sqlproject.modelconfig import MODEL_CONFIG_KEYS
from jobs.sqlproject.packages import Package, load_packages, package_folders
from jobs.sqlproject.projectfile import (
    KEYS,
    NO_EFFECT,
    ProjectFile,
    is_skipped,
    property_files,
    read_project_file,
    skipped_folders,
)
from jobs.sqlproject.properties import ProjectProperties, load_properties

if TYPE_CHECKING:
    from jobs.run_context import RunContext

log = logging.getLogger(__name__)

#: every key a project file may hold (those of NO_EFFECT with a notice)
PROJECT_KEYS = (*KEYS, *NO_EFFECT)


@dataclass(frozen=True)
class Model:
    """One SQL model: its name (from the file), the file, and the folder it lives in (staging, features, ...)."""

    name: str
    path: Path
    folder: str
    #: folders from the model path down to the file, then the file's stem: ("features", "heart_features")
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Seed:
    """A CSV file of ``seeds/``, registered as a view for ``ref('name')``."""

    name: str
    path: Path
    #: folders from the seed path down to the file, then the file's stem
    parts: tuple[str, ...] = ()


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
    #: the packages whose macros and tests the project uses (the built-in dbt and dbt_utils among them)
    packages: tuple[Package, ...] = ()
    #: dbt's ``dispatch:``: macro namespace -> the packages searched, in order
    dispatch: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: what was read but changes nothing here (dbt-only keys), said once when the project is read
    notices: tuple[str, ...] = ()
    #: dbt's ``target`` (SQL_TARGET or --target)
    target: Target = field(default_factory=Target)
    #: the vars set with --vars: a template may render them as SQL (``| sql``) only within limits
    command_line_vars: frozenset[str] = frozenset()

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


def _model_files(root: Path, project_file: ProjectFile, skipped: set[Path]) -> list[tuple[Path, Path]]:
    """(file, the folder its parts are relative to) of every model."""
    if project_file.model_paths is None:  # project.yml's way: every folder but the special ones
        not_models = project_file.not_models()
        return [
            (path, root)
            for path in sorted(root.rglob("*.sql"))
            if path.relative_to(root).parts[0] not in not_models and not is_skipped(path, root, skipped)
        ]
    found = []
    for folder in project_file.model_paths:
        base = (root / folder).resolve()
        found.extend((path, base) for path in sorted(base.rglob("*.sql")) if not is_skipped(path, root, skipped))
    return found


def discover_models(root: Path, project_file: ProjectFile | None = None, skipped: set[Path] | None = None) -> dict:
    """Every model file; a duplicate name is an error naming both files."""
    project_file = project_file or read_project_file(root)
    models: dict[str, Model] = {}
    for path, base in _model_files(root, project_file, skipped or set()):
        name = path.stem
        if name in models:
            raise DependencyError(
                f"Two models are named {name!r}: {models[name].path} and {path}. "
                "Model names come from file names and must be unique; rename one of the files."
            )
        relative = path.relative_to(base)
        folder = relative.parts[0] if len(relative.parts) > 1 else ""
        models[name] = Model(name=name, path=path, folder=folder, parts=relative.with_suffix("").parts)
    return models


def discover_seeds(
    root: Path, models: Mapping[str, Model], project_file: ProjectFile | None = None, skipped: set[Path] | None = None
) -> dict[str, Seed]:
    """Every ``.csv`` of the seed paths; a name shared with a model (or another seed) is an error naming both."""
    project_file = project_file or read_project_file(root)
    seeds: dict[str, Seed] = {}
    for folder in project_file.seed_paths:
        base = root / folder
        for path in sorted(base.rglob("*.csv")):
            if is_skipped(path, root, skipped or set()):
                continue
            name = path.stem
            other = models[name].path if name in models else seeds[name].path if name in seeds else None
            if other is not None:
                raise DependencyError(
                    f"Two nodes are named {name!r}: {other} and {path}. ref() names must be unique; rename one file."
                )
            seeds[name] = Seed(name=name, path=path, parts=path.relative_to(base).with_suffix("").parts)
    return seeds


def _known(parts: Iterable[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """Every folder prefix and file stem path of the nodes at ``parts``."""
    return {p[:end] for p in parts for end in range(1, len(p) + 1)}


def _macro_and_test_files(root: Path, project_file: ProjectFile) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """(macro files: the macro paths' and the generic tests of ``tests/generic``; singular tests: the other
    ``.sql`` of the test paths)."""
    macros: list[Path] = []
    singular: list[Path] = []
    for folder in project_file.macro_paths:
        macros.extend(sorted((root / folder).rglob("*.sql")))
    for folder in project_file.test_paths:
        generic = root / folder / "generic"
        macros.extend(sorted(generic.rglob("*.sql")))
        singular.extend(p for p in sorted((root / folder).rglob("*.sql")) if not p.is_relative_to(generic))
    return tuple(dict.fromkeys(macros)), tuple(singular)


def load_project(
    root: Path,
    vars_overrides: Mapping[str, Any] | None = None,
    *,
    target: Target | None = None,
    errors: list[SqlProjectError] | None = None,
) -> SqlProject:
    """Read the project at ``root`` (the folder holding its project file, or ``sources.yml``). With ``errors``, a
    property file with an error is added there and the others are read still."""
    root = root.resolve()

    def relative(path: Path) -> str:
        return SqlProject(root, {}, {}, {}).relative(path)

    notices: list[str] = []
    project_file = read_project_file(root, notices.append)
    packages = load_packages(
        root, project_file.get("packages"), project_file.file, relative, project_file.install_path, notices.append
    )
    skipped = skipped_folders(project_file, package_folders(packages))
    files = property_files(root, skipped)
    sources = load_sources(root, files)
    models = discover_models(root, project_file, skipped)
    clash = sorted(set(models) & {f"source__{name}" for name in sources})
    if clash:
        raise DependencyError(f"Model name(s) {', '.join(clash)} clash with source view names; rename the model.")
    seeds = discover_seeds(root, models, project_file, skipped)
    name = project_file.name
    package_names = {p.name for p in packages}
    model_configs = parse_folder_configs(
        project_file.get("models"),
        name,
        _known(m.parts for m in models.values()),
        MODEL_CONFIG_KEYS,
        project_file.file,
        "models",
        package_names,
        notices.append,
    )
    seed_configs = parse_folder_configs(
        project_file.get("seeds"),
        name,
        _known(s.parts for s in seeds.values()),
        SEED_CONFIG_KEYS,
        project_file.file,
        "seeds",
        package_names,
        notices.append,
    )
    macro_files, singular_tests = _macro_and_test_files(root, project_file)
    properties = load_properties(root, set(models), set(seeds), relative, files, notices.append, errors)
    for notice in dict.fromkeys(notices):
        log.info("Notice: %s", notice)
    return SqlProject(
        root=root,
        models=models,
        sources=sources,
        vars=load_project_vars(root, vars_overrides),
        macro_files=macro_files,
        singular_tests=singular_tests,
        seeds=seeds,
        properties=properties,
        model_folder_configs=tuple(model_configs),
        seed_folder_configs=tuple(seed_configs),
        name=name,
        packages=packages,
        dispatch=project_file.dispatch,
        notices=tuple(dict.fromkeys(notices)),
        target=target or Target(),
        command_line_vars=frozenset(vars_overrides or ()),
    )
