"""What a model version was made from: rendered SQL of its lineage, library versions and the code revision.

Recorded in ``metadata.json`` so that any version can be explained ("which SQL built its features?") and
reproduced (same SQL hashes, vars, libraries and code revision give the same model).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jobs.errors import RecipeError

LIBRARIES = ("scikit-learn", "numpy", "pandas", "pyarrow", "scipy", "joblib", "pyspark")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def code_revision(root: Path) -> str:
    """``git rev-parse HEAD`` of the project (with ``+dirty`` for uncommitted changes), or "unknown" outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head or "unknown"


def sql_lineage(project: Any, ctx: Any, tables: Iterable[str]) -> dict[str, dict[str, str]]:
    """For each feature table: ``{model: sha256 of its rendered SQL}`` for the table and every model upstream of it.

    Rendered (not template) SQL, so a change of a macro or a var that changes what Spark runs changes the hash.
    """
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.graph import reachable

    compiled = CompiledProject.build(project, ctx)
    rendered, graph = compiled.rendered, compiled.graph
    lineage: dict[str, dict[str, str]] = {}
    for table in tables:
        if table not in rendered:
            raise RecipeError(
                f"The feature table {table!r} is not a model of the SQL project {project.root}. "
                f"Models: {', '.join(sorted(rendered))}."
            )
        names = sorted({table} | reachable(table, graph))
        lineage[table] = {name: sha256_text(rendered[name].sql) for name in names}
    return lineage


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
