"""``models:`` and ``seeds:`` of ``project.yml``: configuration by folder, dbt's ``+key`` way.

```yaml
models:
  retraining:            # optional: the project's name, as in dbt
    features:
      +materialized: table
      +tags: [nightly]
```

A key starting with ``+`` is a config value for every model under that folder (deeper folders win, tags add up);
any other key names a subfolder or a model (file name without ``.sql``) and must exist. A model's own
``config()`` wins over its property file's ``config:``, which wins over its folders'.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.errors import SqlProjectError
from jobs.sqlproject.modelconfig import NO_EFFECT
from jobs.sqlproject.yamlfile import where

SEED_CONFIG_KEYS = ("column_types", "tags", "docs", "meta")


@dataclass(frozen=True)
class FolderConfig:
    """Config set at ``parts`` (folders, then possibly a file stem) of the project."""

    parts: tuple[str, ...]
    config: Mapping[str, Any]
    where: str


def parse_folder_configs(
    tree: Any,
    project_name: str | None,
    known_paths: set[tuple[str, ...]],
    allowed: Sequence[str],
    file: str,
    kind: str,
    packages: Collection[str] = (),
    notice: Callable[[str], None] | None = None,
) -> list[FolderConfig]:
    """Flatten the nested mapping; an unknown folder or key names the file, line and what is allowed.

    As in dbt, the project's name may head the tree (beside config for the whole project); config of a package's
    models (``dbt_utils:``) changes nothing, since packages' models are not built, and is named to ``notice``.
    """
    if tree is None:
        return []
    if not isinstance(tree, dict):
        raise SqlProjectError(f"{where(file, tree)}: '{kind}:' must be a mapping of folders. Got {tree!r} instead.")
    found: list[FolderConfig] = []

    def walk(node: Mapping, parts: tuple[str, ...]) -> None:
        config: dict[str, Any] = {}
        for key, value in node.items():
            key_text = str(key)
            bare = key_text.lstrip("+")
            if not parts and project_name and key_text == project_name and isinstance(value, dict):
                walk(value, parts)
                continue
            if not parts and key_text in packages and parts + (key_text,) not in known_paths:
                if notice is not None:
                    notice(
                        f"{where(file, node, key)}: config of package {key_text!r} has no effect here: only the "
                        "project's own models and seeds are built."
                    )
                continue
            if bare in NO_EFFECT and kind == "models" and notice is not None:
                notice(f"{where(file, node, key)}: {key_text!r} has no effect here: {NO_EFFECT[bare]}.")
            if key_text.startswith("+") or (bare in allowed and parts + (bare,) not in known_paths):
                if bare not in allowed:
                    raise SqlProjectError(
                        f"{where(file, node, key)}: unknown config key {key_text!r} under '{kind}:'. "
                        f"Allowed: {', '.join('+' + k for k in allowed)}."
                    )
                config[bare] = value
            elif parts + (key_text,) in known_paths:
                if not isinstance(value, dict):
                    raise SqlProjectError(
                        f"{where(file, node, key)}: {key_text!r} is a folder or {kind[:-1]}; give it a mapping of "
                        f"'+key: value'. Got {value!r} instead."
                    )
                walk(value, parts + (key_text,))
            else:
                subfolders = sorted(
                    {p[len(parts)] for p in known_paths if len(p) > len(parts) and p[: len(parts)] == parts}
                )
                raise SqlProjectError(
                    f"{where(file, node, key)}: {key_text!r} under '{kind}:' is neither a config key "
                    f"(+{', +'.join(allowed)}) nor a folder or {kind[:-1]} of {'/'.join(parts) or 'the project'} "
                    f"({', '.join(subfolders) or 'none'})."
                )
        if config:
            found.append(FolderConfig(parts, config, where(file, node)))

    walk(tree, ())
    return found


def config_for(parts: tuple[str, ...], configs: Sequence[FolderConfig]) -> dict[str, Any]:
    """The merged folder config of a node at ``parts``: deeper wins, ``tags`` add up."""
    merged: dict[str, Any] = {}
    tags: list[str] = []
    for folder in sorted(configs, key=lambda c: len(c.parts)):
        if parts[: len(folder.parts)] != folder.parts:
            continue
        for key, value in folder.config.items():
            if key == "tags":
                tags.extend([value] if isinstance(value, str) else list(value or []))
            else:
                merged[key] = value
    if tags:
        merged["tags"] = list(dict.fromkeys(tags))
    return merged
