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
