"""YAML files of the SQL project read with the line of every mapping, so each refusal names file, line and key.

Nothing in a project's YAML is silently ignored: :func:`check_keys` turns an unknown key into an error that names
the file, the key's line and the keys allowed there.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from jobs.errors import SqlProjectError


class YamlMap(dict):
    """A mapping that remembers the line it starts on and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line) if hasattr(self, "key_lines") else self.line


class YamlList(list):
    """A list that remembers the line of each item."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if index < len(lines) else self.line


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> YamlMap:
    loader.flatten_mapping(node)
    result = YamlMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> YamlList:
    result = YamlList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path, error: type[Exception] = SqlProjectError) -> Any:
    """The document of ``path`` (``{}`` when empty), mappings as :class:`YamlMap`, lists as :class:`YamlList`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path} does not exist. Is --project-dir pointing at the SQL project?") from None
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: invalid YAML: {getattr(e, 'problem', e)}") from e
    if document is None:
        empty = YamlMap()
        empty.line, empty.key_lines = 1, {}
        return empty
    return document


def line_of(value: Any, key: Any = None) -> int | None:
    """The line of ``key`` inside ``value`` (or of ``value`` itself), when ``value`` came from :func:`load_yaml`."""
    if isinstance(value, YamlMap):
        return value.line_of(key) if key is not None else value.line
    if isinstance(value, YamlList):
        return value.line_of(key) if isinstance(key, int) else value.line
    return None


def where(file: str, value: Any = None, key: Any = None) -> str:
    """``sql/x.yml, line 12`` (or just the file when the line is unknown)."""
    line = line_of(value, key)
    return f"{file}, line {line}" if line else file


def check_keys(mapping: Any, allowed: Iterable[str], file: str, what: str, also: Iterable[str] = ()) -> None:
    """Refuse a key that is not in ``allowed`` (nor in ``also``: dbt's keys read for what they describe), naming the
    file, the key's line and the allowed keys."""
    allowed, also = tuple(allowed), tuple(also)
    if not isinstance(mapping, dict):
        raise SqlProjectError(f"{where(file, mapping)}: {what} must be a mapping. Got {mapping!r} instead.")
    for key in mapping:
        if key not in allowed and key not in also:
            more = f" Also: {', '.join(also)}." if also else ""
            raise SqlProjectError(
                f"{where(file, mapping, key)}: unknown key {key!r} in {what}. Allowed keys: {', '.join(allowed)}.{more}"
            )
