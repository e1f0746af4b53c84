"""MkDocs hooks for the documentation site (``mkdocs.yml``): the pages kept outside ``docs/`` join the site.

README.md, bench/README.md, the benchmark results and CHANGELOG.md live where readers of the repository expect
them, and link to each other and to ``docs/`` with paths that work on GitHub. The site publishes each under a name
of its own (README is the home page) and rewrites every relative link from the repository's path to the site's,
anchors kept. MkDocs then checks the rewritten links (``mkdocs build --strict``): a link to a file or a heading that
does not exist fails the build as it would have failed on GitHub.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
#: repository path -> the page's path in the site; docs/<page>.md is published as <page>.md
EXTRA_PAGES = {
    "README.md": "index.md",
    "bench/README.md": "bench.md",
    "bench/results/results.md": "bench-results.md",
    "CHANGELOG.md": "changelog.md",
}
#: files the pages show (images), published beside them
EXTRA_FILES = {
    "bench/results/rows_vs_time.png": "rows_vs_time.png",
    "bench/results/weekly.png": "weekly.png",
}
_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def site_path(repository_path: str) -> str | None:
    """Where a repository file is published, or None when the site does not carry it."""
    if repository_path in EXTRA_PAGES:
        return EXTRA_PAGES[repository_path]
    if repository_path in EXTRA_FILES:
        return EXTRA_FILES[repository_path]
    if repository_path.startswith("docs/"):
        return repository_path.removeprefix("docs/")
    return None


def repository_path(page_uri: str) -> str:
    """The repository path of a page of the site (its ``src_uri``)."""
    extra = {site: repo for repo, site in EXTRA_PAGES.items()}
    return extra.get(page_uri, f"docs/{page_uri}")


def rewrite_links(markdown: str, page_uri: str) -> str:
    """Every relative link of the page, from the repository's layout to the site's; others are left alone."""
    here = repository_path(page_uri)

    def rewrite(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path, hash_mark, anchor = target.partition("#")
        published = site_path(posixpath.normpath(posixpath.join(posixpath.dirname(here), path)))
        if published is None:  # left as written: MkDocs reports it
            return match.group(0)
        relative = posixpath.relpath(published, posixpath.dirname(page_uri) or ".")
        return f"{match.group(1)}{relative}{hash_mark}{anchor}{match.group(3)}"

    parts = re.split(r"(```.*?```)", markdown, flags=re.S)  # code blocks are shown as written
    return "".join(part if part.startswith("```") else _LINK.sub(rewrite, part) for part in parts)


def on_files(files: Files, config) -> Files:
    for source, target in {**EXTRA_PAGES, **EXTRA_FILES}.items():
        path = ROOT / source
        if target.endswith(".md"):
            files.append(File.generated(config, target, content=path.read_text(encoding="utf-8")))
        else:
            files.append(File.generated(config, target, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    return rewrite_links(markdown, page.file.src_uri)
