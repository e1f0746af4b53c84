"""One validator for settings and config values: every bad value fails with "<what> must be ... Got ... instead."."""

from __future__ import annotations

import pytest

from jobs.errors import CompilationError, ConfigError, SqlProjectError, check_scalar
from jobs.run_context import RunContext
from jobs.settings import Settings
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.config import lookback_days
from jobs.sqlproject.modelconfig import parse_config


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("x", {}, "The x must be a whole number. Got 'x' instead."),
        (True, {}, "The x must be a whole number. Got True instead."),
        (1.5, {}, "The x must be a whole number. Got 1.5 instead."),
        (0, {"minimum": 1}, "The x must be a whole number of at least 1. Got 0 instead."),
        (11, {"maximum": 10}, "The x must be a whole number of at most 10. Got 11 instead."),
        (
            1.5,
            {"kind": float, "minimum": 0, "maximum": 1, "closed": "neither"},
            "The x must be a number in (0, 1). Got 1.5 instead.",
        ),
        (
            0,
            {"kind": float, "minimum": 0, "maximum": 1, "closed": "neither"},
            "The x must be a number in (0, 1). Got 0 instead.",
        ),
        (float("nan"), {"kind": float}, "The x must be a number. Got nan instead."),
        ("yes", {"kind": bool}, "The x must be true or false. Got 'yes' instead."),
        (1, {"kind": bool}, "The x must be true or false. Got 1 instead."),
        ("many", {"from_text": True}, "The x must be a whole number. Got 'many' instead."),
    ],
)
def test_bad_values_have_one_message_shape(value, kwargs, message) -> None:
    kind = kwargs.pop("kind", int)
    with pytest.raises(ConfigError) as info:
        check_scalar(value, "The x", kind, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (3, {"minimum": 1}, 3),
        (" 42 ", {"from_text": True}, 42),
        (1, {"kind": float, "minimum": 0, "maximum": 1}, 1),
        (False, {"kind": bool}, False),
    ],
)
def test_good_values_are_returned(value, kwargs, expected) -> None:
    kind = kwargs.pop("kind", int)
    assert check_scalar(value, "The x", kind, **kwargs) == expected


def test_the_error_class_is_the_callers() -> None:
    with pytest.raises(CompilationError):
        check_scalar("2", "config(repartition=...)", error=CompilationError)


def test_every_caller_uses_the_same_shape(tmp_path) -> None:
    cases = [
        (
            lambda: Settings.from_env({"JDBC_FETCHSIZE": "lots"}, root=tmp_path),
            "The JDBC_FETCHSIZE setting must be a whole number of at least 1. Got 'lots' instead.",
        ),
        (
            lambda: Settings.from_env({"SQL_THREADS": "0"}, root=tmp_path),
            "The SQL_THREADS setting must be a whole number of at least 1. Got 0 instead.",
        ),
        (
            lambda: Settings.from_env({"RETRAIN_PG_PORT": "0"}, root=tmp_path),
            "The RETRAIN_PG_PORT setting must be a whole number of at least 1. Got 0 instead.",
        ),
        (
            lambda: lookback_days({"lookback_days": True}),
            "The 'lookback_days' var (sql/project.yml or --vars) must be a whole number of at least 1. "
            "Got True instead.",
        ),
        (
            lambda: RunContext.for_ds("2026-11-22").window(0),
            "The 'lookback_days' var must be a whole number of at least 1. Got 0 instead.",
        ),
        (
            lambda: parse_config({"repartition": True}, "m (sql/m.sql)"),
            "m (sql/m.sql): config(repartition=...) must be a whole number of at least 1. Got True instead.",
        ),
        (
            lambda: parse_config({"cache": "yes"}, "m (sql/m.sql)"),
            "m (sql/m.sql): config(cache=...) must be true or false. Got 'yes' instead.",
        ),
    ]
    for call, message in cases:
        with pytest.raises((ConfigError, CompilationError)) as info:
            call()
        assert str(info.value) == message


def test_data_test_minimum_uses_the_same_shape(tmp_path) -> None:
    from jobs.sqlproject.project import load_project

    project_dir = tmp_path / "sql"
    (project_dir / "models").mkdir(parents=True)
    (project_dir / "sources.yml").write_text(
        "sources:\n  - {name: s, table: t, partition_column: id, window_column: ts, "
        "columns: {id: bigint, ts: timestamp}}\n"
    )
    (project_dir / "models" / "m.sql").write_text("SELECT * FROM {{ source('s') }}\n")
    (project_dir / "models" / "m.yml").write_text("tests:\n  - row_count_min: {min: -1}\n")
    project = load_project(project_dir, {})
    with pytest.raises(
        SqlProjectError,
        match=r"row_count_min's 'min:' must be a whole number of at least 0\. "
        r"Got -1 instead\.",
    ):
        CompiledProject.build(project, RunContext.for_ds("2026-11-22"))
