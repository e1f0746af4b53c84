"""The package's shape: a short top level, no import cycles, no reaching into another package's private names."""

from __future__ import annotations

import ast
import importlib
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from tests.conftest import REPO_ROOT

JOBS = REPO_ROOT / "jobs"
STEP_MODULES = {"extract.py", "transform.py", "train.py", "validate.py", "deploy.py", "notify.py"}
TOP_LEVEL_LIMIT = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(JOBS.rglob("*.py")) if "__pycache__" not in p.parts}


def resolve(node: ast.ImportFrom, current: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    base = package_of(current, path).split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(path: Path, current: str, known: dict[str, Path]) -> set[str]:
    """The ``jobs`` modules a module imports anywhere: at load time or inside a function (not for type checking).

    An import deferred into a function still couples the two modules: a cycle through one is a cycle.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            target = resolve(node, current, path)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in known else target)
    return {name for name in found if name in known and name != current}


def test_top_level_of_jobs_is_short() -> None:
    entries = sorted(p.name for p in JOBS.iterdir() if p.name != "__pycache__" and not p.name.startswith("."))
    others = [e for e in entries if e not in STEP_MODULES | {"__init__.py", "__main__.py"}]
    assert len(others) <= TOP_LEVEL_LIMIT, f"jobs/ holds {len(others)} entries besides the steps: {others}"


def test_no_import_cycles() -> None:
    known = modules()
    graph = {name: imported_modules(path, name, known) for name, path in known.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as e:
        raise AssertionError(f"import cycle: {' -> '.join(e.args[1])}") from None
    assert set(order) == set(known)


def test_steps_do_not_import_each_other() -> None:
    """A fact two steps share lives below them (settings, run context, a subpackage), not in one of the steps."""
    known = modules()
    steps = {f"jobs.{name.removesuffix('.py')}" for name in STEP_MODULES}
    offences = [
        f"{step} imports {other}"
        for step in sorted(steps)
        for other in sorted(imported_modules(known[step], step, known) & steps)
    ]
    assert not offences, "\n".join(offences)


def test_every_module_imports_on_its_own() -> None:
    """Importing any module first (as Airflow's tasks and the CLI's handlers do) works, whatever was loaded before."""
    saved = {name: module for name, module in sys.modules.items() if name == "jobs" or name.startswith("jobs.")}
    failures = []
    try:
        for name in modules():
            if name == "jobs.__main__":  # runs the command line when imported
                continue
            for loaded in [n for n in sys.modules if n == "jobs" or n.startswith("jobs.")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as e:  # noqa: BLE001 - every failure is collected and reported
                failures.append(f"{name}: {type(e).__name__}: {e}")
    finally:
        for loaded in [n for n in sys.modules if n == "jobs" or n.startswith("jobs.")]:
            del sys.modules[loaded]
        sys.modules.update(saved)
    assert not failures, "\n".join(failures)


def test_no_module_uses_another_packages_private_names() -> None:
    known = modules()
    offences = []
    for name, path in known.items():
        package = package_of(name, path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = resolve(node, name, path)
                if not target.startswith("jobs"):
                    continue
                for alias in node.names:
                    if f"{target}.{alias.name}" in known:
                        aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
                    elif alias.name.startswith("_") and package_of(target, known.get(target, Path())) != package:
                        offences.append(f"{name} imports {alias.name} from {target}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in known and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                target = aliases[node.value.id]
                if package_of(target, known[target]) != package:
                    offences.append(f"{name} uses {target}.{node.attr}")
    assert not offences, "\n".join(offences)


def test_each_command_lives_in_the_module_named_after_it() -> None:
    """``retrain notify`` is in jobs/commands/notify.py, ``retrain class-archive`` in class_archive.py: the command
    tells you the file."""
    import argparse

    from jobs.cli import COMMANDS

    folder = JOBS / "commands"
    on_disk = {p.stem for p in folder.glob("*.py")} - {"__init__", "common"}
    assert {module.__name__.rpartition(".")[2] for module in COMMANDS} == on_disk
    for module in COMMANDS:
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        module.register(subparsers)
        assert [name.replace("-", "_") for name in subparsers.choices] == [module.__name__.rpartition(".")[2]]


SERVING = REPO_ROOT / "serving"
#: what the serving backend must never load: it installs without them (``pip install 'retrain[serving]'``)
PIPELINE_ONLY = ("pyspark", "matplotlib")


def names_imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any level (inside functions too), as a dotted name: ``from a.b import c``
    names ``a.b`` and ``a.b.c``; ``importlib.import_module("x")`` and ``__import__("x")`` name ``x``."""
    current = module_name(path)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = resolve(node, current, path)
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if function in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def test_jobs_never_imports_serving() -> None:
    """One direction: the backend depends on the pipeline's core, never the other way (the demo and the tests start
    it as a program, ``python -m serving``)."""
    offences = [
        f"{name} imports {imported}"
        for name, path in modules().items()
        for imported in sorted(names_imported(path))
        if imported == "serving" or imported.startswith("serving.")
    ]
    assert not offences, "\n".join(offences)


def test_serving_loads_neither_spark_nor_matplotlib() -> None:
    """Nothing under serving/ imports PySpark or Matplotlib, nor a ``jobs`` module that loads them when imported."""
    import subprocess

    files = {module_name(p): p for p in sorted(SERVING.rglob("*.py")) if "__pycache__" not in p.parts}
    imported = {name: names_imported(path) for name, path in files.items()}
    direct = [
        f"{name} imports {module}"
        for name, names in imported.items()
        for module in sorted(names)
        if module.split(".")[0] in PIPELINE_ONLY
    ]
    assert not direct, "\n".join(direct)

    known = modules()
    jobs_modules = {module for names in imported.values() for module in names if module in known}
    candidates = sorted(jobs_modules | set(files) - {"serving.__main__"})  # __main__ would start the backend
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[2:]:\n"
        "    importlib.import_module(name)\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(',')))))\n"
    )

    def loaded_by(names: list[str]) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, ",".join(PIPELINE_ONLY), *names],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip()

    if loaded_by(candidates):  # one interpreter for all; on a failure, one per module to name the culprits
        culprits = [f"importing {name} loads {heavy}" for name in candidates if (heavy := loaded_by([name]))]
        raise AssertionError("\n".join(culprits))
