"""Discover an SQL project on disk: its models, sources, vars, macros and singular data tests.

A model is a file ``<folder>/<name>.sql`` anywhere in the project except ``macros/`` and ``tests/``; its name
comes from the file, so renaming the file renames the model. Names are unique across the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.errors import DependencyError
from jobs.sqlproject.config import Source, load_project_vars, load_sources

MACROS_DIR = "macros"
TESTS_DIR = "tests"
_NOT_MODEL_DIRS = {MACROS_DIR, TESTS_DIR}


@dataclass(frozen=True)
class Model:
    """One SQL model: its name (from the file), the file, and the folder it lives in (staging, features, ...)."""

    name: str
    path: Path
    folder: str

    @property
    def properties_path(self) -> Path:
        """``<name>.yml`` beside the model: its description, data tests and unit tests."""
        return self.path.with_suffix(".yml")


@dataclass(frozen=True)
class SqlProject:
    """Everything the runner needs to know about a project, read once."""

    root: Path
    models: Mapping[str, Model]
    sources: Mapping[str, Source]
    vars: Mapping[str, Any]
    macro_files: tuple[Path, ...] = ()
    singular_tests: tuple[Path, ...] = ()

    def relative(self, path: Path) -> str:
        """A path as the user sees it: relative to the project's parent (``sql/features/x.sql``)."""
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

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
        models[name] = Model(name=name, path=path, folder=folder)
    return models


def load_project(root: Path, vars_overrides: Mapping[str, Any] | None = None) -> SqlProject:
    """Read the project at ``root`` (the folder holding ``sources.yml``)."""
    root = root.resolve()
    sources = load_sources(root)
    models = discover_models(root)
    clash = sorted(set(models) & {f"source__{name}" for name in sources})
    if clash:
        raise DependencyError(f"Model name(s) {', '.join(clash)} clash with source view names; rename the model.")
    return SqlProject(
        root=root,
        models=models,
        sources=sources,
        vars=load_project_vars(root, vars_overrides),
        macro_files=tuple(sorted((root / MACROS_DIR).glob("*.sql"))),
        singular_tests=tuple(sorted((root / TESTS_DIR).glob("*.sql"))),
    )
