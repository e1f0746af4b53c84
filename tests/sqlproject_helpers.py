"""Build small SQL projects on disk for tests: a sources.yml, models and their .yml files."""

from __future__ import annotations

import textwrap
from pathlib import Path

SOURCES = """
sources:
  - name: people
    table: people
    partition_column: id
    window_column: created_at
    columns: {id: bigint, name: string, age: int, created_at: timestamp}
"""


def write_project(root: Path, files: dict[str, str], project_yml: str = "vars: {}\n") -> Path:
    """``files`` maps paths inside the project (``staging/a.sql``) to their text (dedented)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sources.yml").write_text(SOURCES)
    (root / "project.yml").write_text(project_yml)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root
