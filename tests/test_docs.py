"""The documentation stays true to the tree: every module is named in docs/architecture.md, the pages name only
modules and files that exist, their links resolve, the commands they show parse, and nothing refers to a document
kept outside the repository."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
#: the pages that describe the tree as it is (CHANGELOG.md is history: it may name what no longer exists)
PAGES = sorted([REPO_ROOT / "README.md", REPO_ROOT / "bench" / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
NOT_MODULES = {"__init__.py", "__main__.py"}
# Built from parts, so that this file does not match itself.
OUTSIDE_DOCUMENTS = re.compile("|".join([r"DESIGN" + r"\.md", r"DESIGN" + r" section", r"shared" + r" notes"]), re.I)
SHELL_BLOCK = re.compile(r"```(?:bash|sh)\n(.*?)```", re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: the project's commands, and the module whose ``build_parser()`` parses each
PROGRAMS = {"retrain": "jobs.cli", "retrain-serve": "serving.cli"}
MODULE_PATH = re.compile(r"(?<![\w/.])((?:jobs|serving|bench|dags|tests)/[\w/]+\.py)\b")


def modules() -> list[str]:
    """Every Python module under jobs/ and serving/, as a repository-relative path."""
    found = []
    for package in ("jobs", "serving"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            if path.name not in NOT_MODULES and "__pycache__" not in path.parts:
                found.append(path.relative_to(REPO_ROOT).as_posix())
    return sorted(found)


def repository_files() -> list[Path]:
    """Tracked files, and new files not ignored by .gitignore, that are still in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = (REPO_ROOT / name for name in listed.split("\0") if name)
    return [path for path in paths if path.is_file()]


def shown_commands(markdown: str) -> list[tuple[str, list[str]]]:
    """``(program, arguments)`` of every ``retrain`` and ``retrain-serve`` command in the page's shell blocks
    (comments dropped, ``$(...)`` unwrapped)."""
    commands = []
    for block in SHELL_BLOCK.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line)
            for part in re.split(r"&&|\|\||;|&|\$\(|\)|\|", line):
                try:
                    words = shlex.split(part)
                except ValueError:
                    words = part.split()
                for i, word in enumerate(words):
                    program = word.rsplit("/", 1)[-1]
                    if program in PROGRAMS:
                        commands.append((program, words[i + 1 :]))
                        break
    return commands


def retrain_commands(markdown: str) -> list[list[str]]:
    """The arguments of every ``retrain`` command in the page's shell blocks."""
    return [arguments for program, arguments in shown_commands(markdown) if program == "retrain"]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(match) for match in re.findall(r"^#+ (.+)$", text, re.M)}


def test_every_module_is_named_in_the_architecture() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(MODULE_PATH.findall(text))
    missing = [module for module in modules() if module not in named]
    assert modules(), "no modules found under jobs/ and serving/"
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_pages_name_only_python_files_that_exist(page: Path) -> None:
    named = set(MODULE_PATH.findall(page.read_text(encoding="utf-8")))
    gone = sorted(path for path in named if not (REPO_ROOT / path).is_file())
    assert not gone, f"{page.relative_to(REPO_ROOT)} names Python files that do not exist: {', '.join(gone)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_links_between_pages_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{page.relative_to(REPO_ROOT)} links to what does not exist: {', '.join(broken)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_the_commands_shown_parse(page: Path) -> None:
    import importlib

    for program, arguments in shown_commands(page.read_text(encoding="utf-8")):
        parser = importlib.import_module(PROGRAMS[program]).build_parser()
        try:
            parser.parse_args(arguments)
        except SystemExit:
            shown = " ".join([program, *arguments])
            raise AssertionError(f"{page.relative_to(REPO_ROOT)} shows `{shown}`, which does not parse") from None


def test_nothing_refers_to_a_document_outside_the_repository() -> None:
    found = []
    for path in repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files (plots, archives)
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_DOCUMENTS.search(line):
                found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "References to documents kept outside the repository:\n" + "\n".join(found)


CODE_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def code_blocks(language: str) -> list[tuple[str, str]]:
    """``(page, body)`` of every block of ``language`` in the pages."""
    return [
        (page.relative_to(REPO_ROOT).as_posix(), body)
        for page in PAGES
        for found, body in CODE_BLOCK.findall(page.read_text(encoding="utf-8"))
        if found == language
    ]


@pytest.mark.parametrize("language", ["yaml", "json", "python"])
def test_the_examples_are_valid(language: str) -> None:
    """Every YAML and JSON example loads and every Python example compiles (README's run in test_readme.py)."""
    import json

    import yaml

    load = {"yaml": yaml.safe_load, "json": json.loads, "python": lambda body: compile(body, "<example>", "exec")}
    blocks = code_blocks(language)
    assert blocks, f"no {language} examples found"
    for page, body in blocks:
        try:
            load[language](body)
        except Exception as e:  # noqa: BLE001 - reported with the page and the example
            raise AssertionError(f"{page}: a {language} example does not load ({e}):\n{body}") from None


def test_the_sql_project_examples_use_known_keys() -> None:
    """The project.yml and property-file examples of docs/sql.md use only keys the project's reader accepts."""
    import yaml

    from jobs.sqlproject import properties
    from jobs.sqlproject.project import PROJECT_KEYS

    allowed_in = {
        "models": properties.MODEL_KEYS,
        "columns": properties.COLUMN_KEYS,
        "unit_tests": properties.UNIT_TEST_KEYS,
    }
    checked = 0
    for page, body in code_blocks("yaml"):
        document = yaml.safe_load(body)
        if not isinstance(document, dict):
            continue
        if "name" in document:  # project.yml
            assert set(document) <= set(PROJECT_KEYS), f"{page}: {sorted(document)}"
            continue
        if "version" in document or "models" in document:
            assert set(document) <= set(properties.DBT_FILE_KEYS), f"{page}: {sorted(document)}"
        for key, allowed in allowed_in.items():
            for entry in document.get(key) or []:
                if isinstance(entry, dict):
                    checked += 1
                    unknown = set(entry) - set(allowed)
                    assert not unknown, f"{page}: unknown key(s) {sorted(unknown)} in a {key} entry:\n{body}"
    assert checked, "no property-file examples found"


def copy_site_sources(target: Path) -> Path:
    """What `make docs` reads, copied under ``target``."""
    import shutil

    for name in ("mkdocs.yml", "README.md", "CHANGELOG.md", "scripts/mkdocs_hooks.py", "bench/README.md"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, target / name)
    shutil.copytree(REPO_ROOT / "docs", target / "docs")
    shutil.copytree(
        REPO_ROOT / "bench" / "results", target / "bench" / "results", ignore=shutil.ignore_patterns("failed-logs")
    )
    return target


def build_site(root: Path) -> subprocess.CompletedProcess:
    import os
    import sys

    mkdocs = Path(sys.executable).with_name("mkdocs")
    return subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(root / "site")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def test_the_site_builds_without_warnings_and_a_broken_link_fails_it(tmp_path) -> None:
    """`make docs` (mkdocs build --strict): the site builds, offline, with README as its home page; a link to a
    missing page or heading fails the build."""
    root = copy_site_sources(tmp_path)
    built = build_site(root)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "WARNING" not in built.stderr, built.stderr[-3000:]
    home = (root / "site" / "index.html").read_text(encoding="utf-8")
    assert "the weekly model-retraining pipeline" in home and 'href="sql.html"' in home
    assert "fonts.googleapis" not in home  # nothing is fetched when the site is opened

    for broken in ("[gone](nowhere.md)", "[gone](architecture.md#no-such-heading)"):
        page = root / "docs" / "security.md"
        page.write_text((REPO_ROOT / "docs" / "security.md").read_text(encoding="utf-8") + f"\n{broken}\n")
        failed = build_site(root)
        assert failed.returncode != 0, f"{broken} did not fail the build"
        assert "security.md" in failed.stderr and ("nowhere.md" in failed.stderr or "no-such-heading" in failed.stderr)
