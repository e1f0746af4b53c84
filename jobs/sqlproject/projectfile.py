"""The project file: ``project.yml``, or dbt's ``dbt_project.yml`` when there is no ``project.yml``.

Both are read the same way. Each key is understood, or named in a notice when it is dbt's and has no effect here
(``profile``, ``config-version``, ``on-run-start``, ...), or refused when it is nobody's. The paths keys say where
models, seeds, macros and tests are, and what is not a model: analyses, snapshots, dbt's target and log folders,
packages. A ``dbt_project.yml`` has dbt's defaults (``models/``, ``seeds/``, ...); a ``project.yml`` without them
keeps this project's own: every ``.sql`` outside ``macros/``, ``tests/`` and ``seeds/`` is a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.errors import SqlProjectError
from jobs.sqlproject.yamlfile import YamlMap, load_yaml, where

PROJECT_FILE = "project.yml"
DBT_PROJECT_FILE = "dbt_project.yml"
SOURCES_FILE = "sources.yml"
#: understood: what the project builds from
KEYS = (
    "name",
    "vars",
    "models",
    "seeds",
    "packages",
    "dispatch",
    "model-paths",
    "seed-paths",
    "macro-paths",
    "test-paths",
    "analysis-paths",
    "snapshot-paths",
    "docs-paths",
    "asset-paths",
    "target-path",
    "log-path",
    "packages-install-path",
)
#: dbt's keys that change nothing here, and why
NO_EFFECT = {
    "version": "the project's version is not recorded",
    "config-version": "there is one version of this file",
    "profile": "the connection is the pipeline's settings (DATABASE_URL), not a profiles.yml",
    "require-dbt-version": "dbt does not run here",
    "clean-targets": "nothing is written into the project",
    "quoting": "temp views are referred to by their bare names",
    "on-run-start": "hooks are not run",
    "on-run-end": "hooks are not run",
    "query-comment": "queries carry no comment",
    "flags": "dbt's behaviour flags do not apply",
    "snapshots": "snapshots are not built",
    "sources": "source config (enabled, freshness) is not applied",
    "tests": "test config by folder is not applied: set severity on each test",
    "data_tests": "test config by folder is not applied: set severity on each test",
    "unit_tests": "unit-test config by folder is not applied",
    "exposures": "exposures are not built",
    "metrics": "the semantic layer is not built",
    "semantic-models": "the semantic layer is not built",
    "saved-queries": "the semantic layer is not built",
    "restrict-access": "groups and access are not enforced",
    "dbt-cloud": "dbt Cloud does not run here",
}
#: folders that never hold models, seeds or property files, besides the ones the paths keys name
ALWAYS_SKIPPED = ("analysis", "analyses", "snapshots", "target", "logs", "dbt_packages", "dbt_modules")


@dataclass(frozen=True)
class ProjectFile:
    """What the project file says; ``path`` is None for a project without one (sources.yml alone)."""

    root: Path
    path: Path | None
    document: Mapping[str, Any]
    notices: tuple[str, ...] = ()
    model_paths: tuple[str, ...] | None = None  # None: every folder but the special ones (project.yml's way)
    seed_paths: tuple[str, ...] = ("seeds",)
    macro_paths: tuple[str, ...] = ("macros",)
    test_paths: tuple[str, ...] = ("tests",)
    skipped: tuple[str, ...] = ALWAYS_SKIPPED
    install_path: str = "dbt_packages"
    dispatch: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def file(self) -> str:
        """The file as messages name it: relative to the project's parent (``sql/project.yml``)."""
        path = self.path or self.root / PROJECT_FILE
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    @property
    def name(self) -> str | None:
        value = self.document.get("name")
        return value if isinstance(value, str) else None

    def get(self, key: str, default: Any = None) -> Any:
        return self.document.get(key, default)

    def not_models(self) -> set[str]:
        """Top-level folders whose files are never models (macros, tests, seeds, analyses, dbt's folders)."""
        return {*self.seed_paths, *self.macro_paths, *self.test_paths, *self.skipped}


def project_file_path(root: Path) -> Path | None:
    for name in (PROJECT_FILE, DBT_PROJECT_FILE):
        if (root / name).is_file():
            return root / name
    return None


def _paths(document: Mapping[str, Any], key: str, default: tuple[str, ...], file: str) -> tuple[str, ...]:
    value = document.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SqlProjectError(f"{where(file, document, key)}: {key!r} must be a list of folders. Got {value!r}.")
    return tuple(v.strip().strip("/") or "." for v in value)


def _dispatch(value: Any, file: str) -> dict[str, tuple[str, ...]]:
    """dbt's ``dispatch: [{macro_namespace: dbt_utils, search_order: [my_project, dbt_utils]}]``."""
    if value is None:
        return {}
    problem = (
        f"{where(file, value)}: 'dispatch:' is a list of {{macro_namespace: <package>, search_order: [<packages>]}}."
    )
    if not isinstance(value, list):
        raise SqlProjectError(f"{problem} Got {value!r}.")
    found = {}
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"macro_namespace", "search_order"}:
            raise SqlProjectError(f"{problem} Got {entry!r}.")
        order = entry["search_order"]
        if not isinstance(order, list) or not all(isinstance(p, str) for p in order):
            raise SqlProjectError(f"{problem} Got search_order {order!r}.")
        found[str(entry["macro_namespace"])] = tuple(order)
    return found


def read_project_file(root: Path, notice: Callable[[str], None] | None = None) -> ProjectFile:
    """Read ``root``'s project file; an unknown key names the file, its line and the keys understood."""
    path = project_file_path(root)
    if path is None:
        if not (root / SOURCES_FILE).is_file():
            raise SqlProjectError(
                f"{root} has no {PROJECT_FILE}, {DBT_PROJECT_FILE} or {SOURCES_FILE}. Is --project-dir pointing at "
                "the SQL project?"
            )
        empty = YamlMap()
        empty.line, empty.key_lines = 1, {}
        return ProjectFile(root=root, path=None, document=empty)
    document = load_yaml(path)
    shown = ProjectFile(root=root, path=path, document={}).file
    if not isinstance(document, dict):
        raise SqlProjectError(f"{shown}: the project file must be a mapping. Got {document!r} instead.")
    notices = []
    for key in document:
        if key in KEYS:
            continue
        if key in NO_EFFECT:
            notices.append(f"{where(shown, document, key)}: {key!r} has no effect here: {NO_EFFECT[key]}.")
            continue
        raise SqlProjectError(
            f"{where(shown, document, key)}: unknown key {key!r} in {path.name}. Allowed keys: "
            f"{', '.join(KEYS[:4])}. Also understood: {', '.join(KEYS[4:])}; and dbt's {', '.join(NO_EFFECT)}, "
            "which have no effect here."
        )
    for message in notices:
        if notice is not None:
            notice(message)
    dbt_style = path.name == DBT_PROJECT_FILE
    model_paths = None
    if dbt_style or "model-paths" in document:
        model_paths = _paths(document, "model-paths", ("models",), shown)
    skipped = [
        *ALWAYS_SKIPPED,
        *_paths(document, "analysis-paths", ("analyses",), shown),
        *_paths(document, "snapshot-paths", ("snapshots",), shown),
        *_paths(document, "target-path", ("target",), shown),
        *_paths(document, "log-path", ("logs",), shown),
        *_paths(document, "packages-install-path", ("dbt_packages",), shown),
    ]
    return ProjectFile(
        root=root,
        path=path,
        document=document,
        notices=tuple(notices),
        model_paths=model_paths,
        seed_paths=_paths(document, "seed-paths", ("seeds",), shown),
        macro_paths=_paths(document, "macro-paths", ("macros",), shown),
        test_paths=_paths(document, "test-paths", ("tests",), shown),
        skipped=tuple(dict.fromkeys(skipped)),
        install_path=_paths(document, "packages-install-path", ("dbt_packages",), shown)[0],
        dispatch=_dispatch(document.get("dispatch"), shown),
    )


#: YAML files at the root that are not property files
NOT_PROPERTY_FILES = (
    PROJECT_FILE,
    DBT_PROJECT_FILE,
    SOURCES_FILE,
    "packages.yml",
    "dependencies.yml",
    "profiles.yml",
    "selectors.yml",
)


def skipped_folders(project_file: ProjectFile, package_roots: Iterable[Path]) -> set[Path]:
    """Folders whose files are neither models, seeds nor property files: analyses, snapshots, dbt's target, log and
    install folders, and packages vendored in the project."""
    root = project_file.root
    return {root / name for name in project_file.skipped} | {Path(p) for p in package_roots}


def is_skipped(path: Path, root: Path, skipped: Iterable[Path]) -> bool:
    relative = path.relative_to(root)
    if any(part.startswith(".") for part in relative.parts):
        return True
    return any(path.is_relative_to(folder) for folder in skipped)


def property_files(root: Path, skipped: Iterable[Path]) -> list[Path]:
    """Every ``.yml``/``.yaml`` of the project that may describe models, seeds, sources or unit tests."""
    skipped = list(skipped)
    found = []
    for path in sorted([*root.rglob("*.yml"), *root.rglob("*.yaml")]):
        if path.parent == root and path.name in NOT_PROPERTY_FILES:
            continue
        if not is_skipped(path, root, skipped):
            found.append(path)
    return found
