"""Packages: folders of macros and generic tests that a project uses as ``name.macro()`` and ``name.test``.

A project names its packages under ``packages:`` of its project file (a folder, vendored in the project or
installed elsewhere), or in dbt's ``packages.yml`` (``local: path``; a hub or git package is found where
``dbt deps`` installs it, ``dbt_packages/<name>``). A package's name is the ``name:`` of its own project file, else
its folder's name.

Two packages are built in, written in Spark SQL: ``dbt`` (the cross-database macros dbt ships, such as
``dbt.hash``, ``dbt.dateadd`` and ``type_string``; callable without the prefix too, as in dbt) and ``dbt_utils``
(the macros and tests analysts use most: ``generate_surrogate_key``, ``star``, ``date_spine``, ``union_relations``,
``pivot``, ``unique_combination_of_columns``, ``expression_is_true``, ``accepted_range``, ...). ``packages.yml``'s
``dbt-labs/dbt_utils`` means the built-in one; a folder named ``dbt_utils`` under ``packages:`` replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.errors import SqlProjectError
from jobs.sqlproject.yamlfile import check_keys, load_yaml, where

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin_packages"
BUILTIN = ("dbt", "dbt_utils")
#: dbt's files listing a project's packages (``dependencies.yml`` since dbt 1.6)
PACKAGE_FILES = ("packages.yml", "dependencies.yml")
DEFAULT_INSTALL_PATH = "dbt_packages"
_ENTRY_KEYS = (
    "local",
    "package",
    "version",
    "git",
    "revision",
    "subdirectory",
    "tarball",
    "name",
    "private",
    "warn-unpinned",
    "install-prerelease",
)


@dataclass(frozen=True)
class Package:
    """One package: its name, folder, macro files (generic tests included) and where it was named."""

    name: str
    root: Path
    macro_files: tuple[Path, ...]
    where: str
    builtin: bool = False


def package_name(folder: Path) -> str:
    """The ``name:`` of the package's ``dbt_project.yml`` or ``project.yml``, else the folder's name."""
    for file in ("dbt_project.yml", "project.yml"):
        path = folder / file
        if path.is_file():
            document = load_yaml(path)
            if isinstance(document, dict) and isinstance(document.get("name"), str):
                return document["name"]
    return folder.name


def macro_files(folder: Path) -> tuple[Path, ...]:
    """``.sql`` files of the package's macro paths (``macro-paths`` of its dbt_project.yml, else ``macros``), and
    of ``tests/generic``."""
    paths: list[Any] = ["macros"]
    project = folder / "dbt_project.yml"
    if project.is_file():
        document = load_yaml(project)
        if isinstance(document, dict) and isinstance(document.get("macro-paths"), list):
            paths = document["macro-paths"]
    files: list[Path] = []
    for relative in [*paths, "tests/generic"]:
        files.extend(sorted((folder / str(relative)).rglob("*.sql")))
    return tuple(dict.fromkeys(files))


def builtin(name: str) -> Package:
    folder = BUILTIN_DIR / name
    return Package(name, folder, macro_files(folder), "built in", builtin=True)


def _folder(value: Any, root: Path, at: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise SqlProjectError(f"{at}: a package is a folder's path (relative to the project). Got {value!r} instead.")
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.is_dir():
        raise SqlProjectError(
            f"{at}: the package folder {value!r} does not exist ({path}). Vendor the package there, or fix the path."
        )
    return path


def _installed(root: Path, install_path: str) -> dict[str, Path]:
    """Packages ``dbt deps`` installed under the project: name -> folder."""
    folder = root / install_path
    if not folder.is_dir():
        return {}
    return {package_name(child): child for child in sorted(folder.iterdir()) if child.is_dir()}


def _from_hub_or_git(entry: dict, root: Path, install_path: str, at: str, notice: Callable[[str], None]) -> Package:
    reference = str(entry.get("package") or entry.get("git") or entry.get("tarball") or entry.get("private"))
    name = reference.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git").replace("-", "_")
    if name == "dbt_utils":
        notice(
            f"{at}: {reference} is the built-in dbt_utils, written for Spark SQL (version "
            f"{entry.get('version', 'any')!r} is not looked at). To use another copy, name its folder with local:."
        )
        return builtin("dbt_utils")
    installed = _installed(root, install_path)
    for candidate in (name, name.removeprefix("dbt_"), str(entry.get("name") or "")):
        if candidate in installed:
            folder = installed[candidate]
            return Package(package_name(folder), folder, macro_files(folder), at)
    raise SqlProjectError(
        f"{at}: the package {reference!r} is not installed: packages are not downloaded here. Copy it into "
        f"{install_path}/{name}/ (where `dbt deps` would put it), or into any folder named with local: <path>."
    )


def load_packages(
    root: Path,
    declared: Any,
    file: str,
    relative: Callable[[Path], str],
    install_path: str = DEFAULT_INSTALL_PATH,
    notice: Callable[[str], None] = log.info,
) -> tuple[Package, ...]:
    """The project's packages: the built-in ones, then those of the project file's ``packages:`` and of dbt's
    ``packages.yml``; a later package of the same name replaces an earlier one (a vendored dbt_utils, say)."""
    found: dict[str, Package] = {name: builtin(name) for name in BUILTIN}
    entries: list[tuple[Any, str]] = []
    if declared is not None:
        if not isinstance(declared, list):
            raise SqlProjectError(f"{where(file, declared)}: 'packages:' must be a list of folders. Got {declared!r}.")
        entries.extend((item, where(file, declared, index)) for index, item in enumerate(declared))
    for name in PACKAGE_FILES:
        path = root / name
        if not path.is_file():
            continue
        listed_in = relative(path)
        document = load_yaml(path)
        check_keys(document, ("packages",), listed_in, name)
        items = document.get("packages") or []
        if not isinstance(items, list):
            raise SqlProjectError(f"{where(listed_in, document, 'packages')}: 'packages:' must be a list.")
        entries.extend((item, where(listed_in, items, index)) for index, item in enumerate(items))
    for item, at in entries:
        if isinstance(item, dict):
            check_keys(item, _ENTRY_KEYS, at.split(", line")[0], "a package")
            if "local" in item:
                folder = _folder(item["local"], root, at)
                package = Package(package_name(folder), folder, macro_files(folder), at)
            else:
                package = _from_hub_or_git(item, root, install_path, at, notice)
        else:
            folder = _folder(item, root, at)
            package = Package(package_name(folder), folder, macro_files(folder), at)
        found[package.name] = package
    return tuple(found.values())


def package_folders(packages: Sequence[Package]) -> set[Path]:
    """The folders of packages that are not built in: no model, seed or property file is read from them."""
    return {package.root for package in packages if not package.builtin}
