"""Atomic Parquet outputs: write into a hidden sibling directory, then swap it in by renaming.

Readers never see a half-written directory, a failed write leaves the previous output untouched, and a re-run
replaces the output whole. Paths are on the driver's filesystem (local disk, or a shared mount on a cluster).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Spark ignores files whose names start with "_" or ".", so the manifest can sit inside the Parquet directory.
MANIFEST = "_manifest.json"
STAGING_DIR = ".staging"


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it replaces ``target``, on error it is removed."""
    # A hidden parent keeps the staging directory out of sight, while its own name stays one that Spark reads
    # without warning ("All paths were ignored" for a path whose last component starts with "." or "_").
    staging_root = target.parent / STAGING_DIR
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = staging_root / f"{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        yield staging
        replace_directory(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging_root.rmdir()  # only when no other write is in progress beside this one


def replace_directory(new: Path, target: Path) -> None:
    """Swap ``new`` into ``target`` with two renames; the old directory is deleted only after the swap."""
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def link_files(source: Path, target: Path, keep: Callable[[Path], bool] = lambda _: True) -> int:
    """Hard-link the data files under ``source`` (not its manifest, Spark's markers or hidden files) into
    ``target``, keeping their sub-folders (a table's partitions), when ``keep(relative path)`` says so; a copy
    where the filesystem cannot link. Returns how many files were linked.

    An incremental output reuses its previous output's unchanged files this way: no byte is rewritten, and the
    previous output stays whole, since a file is deleted only when its last link goes.
    """
    linked = 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or any(part.startswith(("_", ".")) for part in relative.parts) or not keep(relative):
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)
        linked += 1
    return linked


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_manifest(directory: Path) -> dict[str, Any]:
    return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
