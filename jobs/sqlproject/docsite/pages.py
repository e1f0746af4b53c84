"""The site's HTML: ``index.html`` (the graph, the models, sources, recipes, the run's quarantine, JSON-path health
and CASE coverage) and ``models/<model>.html`` (a model's description, materialization, columns, data and unit tests,
coverage, JSON keys and rendered SQL). Plain HTML with one local stylesheet and one local script: opened from disk,
nothing is fetched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from jobs.sqlproject.docsite import graph
from jobs.sqlproject.docsite.catalog import Catalog

_SQL_TOKEN = re.compile(r"(?P<comment>--[^\n]*|/\*.*?\*/)|(?P<string>'(?:[^'\\]|\\.)*')|(?P<word>\b[A-Za-z_]+\b)", re.S)
_KEYWORDS = frozenset(
    re.findall(
        r"\w+",
        "select from where group by order having join left right inner outer full cross semi anti on as and or not in "
        "is null case when then else end with distinct union all limit over partition lateral view cast try_cast true "
        "false between like exists",
    )
)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _rows(value: int | None) -> str:
    return f"{value:,}" if isinstance(value, int) else "–"


def _percent(share: float | None) -> str:
    if share is None:
        return "–"
    return "0%" if share == 0 else f"{100 * share:.1f}%" if share < 0.999 or share == 1 else f"{100 * share:.2f}%"


def _first_sentence(text: str, width: int = 160) -> str:
    sentence = text.split(". ", 1)[0].strip()
    return sentence if len(sentence) <= width else sentence[: width - 1].rsplit(" ", 1)[0] + " …"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """``rows`` hold HTML already escaped."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def highlight_sql(sql: str, anchor: str = "R") -> str:
    """SQL as HTML with numbered lines (``id="<anchor><n>"``) and its comments, strings and keywords marked."""
    out, last = [], 0
    for match in _SQL_TOKEN.finditer(sql):
        out.append(escape(sql[last : match.start()]))
        text = match.group(0)
        if match.group("comment"):
            out.append(f'<span class="c">{escape(text)}</span>')
        elif match.group("string"):
            out.append(f'<span class="s">{escape(text)}</span>')
        elif text.lower() in _KEYWORDS:
            out.append(f'<span class="k">{escape(text)}</span>')
        else:
            out.append(escape(text))
        last = match.end()
    out.append(escape(sql[last:]))
    lines = "".join(out).split("\n")
    numbered = "".join(f'<span class="line" id="{anchor}{i}">{line}</span>' for i, line in enumerate(lines, 1))
    return f'<pre class="sql"><code>{numbered}</code></pre>'


def _page(title: str, body: str, depth: int, catalog: Catalog) -> str:
    up = "../" * depth
    run = f" · run ds={_e(catalog.run.ds)}" if catalog.run else " · no run given"
    name = catalog.project.name or catalog.project.root.name
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · {_e(name)}</title>
<link rel="stylesheet" href="{up}assets/site.css">
</head>
<body>
<header><a class="home" href="{up}index.html">{_e(name)}</a><span class="run">SQL project documentation{run}</span>
<nav><a href="{up}index.html#graph">Graph</a><a href="{up}index.html#models">Models</a>
<a href="{up}index.html#sources">Sources</a><a href="{up}index.html#recipes">Recipes</a>
<a href="{up}index.html#json-health">JSON-path health</a>
<a href="{up}index.html#coverage">CASE coverage</a></nav></header>
<main>
{body}
</main>
<script src="{up}assets/site.js"></script>
</body>
</html>
"""


def _test_results(catalog: Catalog, model: str) -> list[dict[str, Any]]:
    if not catalog.run or not catalog.run.data_tests:
        return []
    return [t for t in catalog.run.data_tests if isinstance(t, dict) and t.get("model") == model]


def _status(status: str | None) -> str:
    if not status:
        return '<span class="badge none">not run</span>'
    return f'<span class="badge {_e(status)}">{_e(status)}</span>'


def _coverage_cell(catalog: Catalog, model: str) -> str:
    coverage = catalog.coverage.get(model)
    if coverage is None:
        return "–"
    if coverage.error:
        return '<span class="badge warn">not measured</span>'
    if not coverage.branch_count:
        return "no CASE"
    share = coverage.reached_count / coverage.branch_count
    cls = "pass" if share == 1 else "warn"
    return f'<span class="badge {cls}">{coverage.reached_count}/{coverage.branch_count} branches</span>'


def _index(catalog: Catalog) -> str:
    compiled, run = catalog.compiled, catalog.run
    parts = []
    if catalog.problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in catalog.problems)
        parts.append(f'<section class="problems"><h2>Problems found</h2><ul>{items}</ul></section>')
    parts.append(
        '<section id="graph"><h2>Graph</h2><p class="hint">Sources → models → feature tables → recipes → '
        "deployed versions. Click a box; hover one to follow its lines.</p>"
        f'<div class="graph-box">{graph.svg(catalog.nodes, catalog.edges)}</div></section>'
    )
    model_rows = []
    for name in compiled.order:
        rendered = compiled.rendered[name]
        results = _test_results(catalog, name)
        failing = [r for r in results if r.get("status") != "pass"]
        tests = sum(1 for t in compiled.tests if t.model == name)
        test_cell = f"{tests}" + (
            f' <span class="badge {"error" if any(r.get("status") == "error" for r in failing) else "warn"}">'
            f"{_not_passing(failing)}</span>"
            if failing
            else (' <span class="badge pass">pass</span>' if results else "")
        )
        props = catalog.project.properties.models.get(name)
        model_rows.append(
            [
                f'<a href="models/{_e(name)}.html">{_e(name)}</a>',
                _e(rendered.config.materialized),
                _rows(run.model_rows.get(name)) if run else "–",
                test_cell,
                str(len(props.unit_tests) if props else 0),
                _coverage_cell(catalog, name),
                _e(_first_sentence(props.description if props else "")),
            ]
        )
    parts.append(
        '<section id="models"><h2>Models</h2>'
        + _table(
            ["model", "materialized", "rows", "data tests", "unit tests", "CASE coverage", "description"],
            model_rows,
        )
        + "</section>"
    )
    source_parts = []
    for key, source in sorted(catalog.project.sources.items()):
        columns = ", ".join(f"{_e(c)} <span class='type'>{_e(t)}</span>" for c, t in source.columns.items())
        rows = f"<p>Snapshot of this run: {_rows(run.source_rows.get(key))} rows.</p>" if run else ""
        source_parts.append(
            f'<div class="card" id="source-{_e(key)}"><h3>{_e(source.call)}</h3><p>{_e(source.description)}</p>'
            f"{rows}<p class='columns'>{columns}</p></div>"
        )
    parts.append('<section id="sources"><h2>Sources</h2>' + "".join(source_parts) + "</section>")
    recipe_rows = []
    for recipe in catalog.recipes:
        deployed = catalog.deployed.get(recipe.name)
        production = (
            f'<span id="deployed-{_e(recipe.name)}">{_e(deployed.version)}</span> since {_e(deployed.promoted_at)}'
            if deployed and deployed.version
            else f'<span id="deployed-{_e(recipe.name)}">none in production</span>'
        )
        recipe_rows.append(
            [
                f'<span id="recipe-{_e(recipe.name)}">{_e(recipe.name)}</span>',
                f'<a href="models/{_e(recipe.feature_table)}.html">{_e(recipe.feature_table)}</a>',
                _e(", ".join(recipe.features)),
                _e(recipe.label),
                production,
                str(deployed.versions) if deployed else "0",
            ]
        )
    parts.append(
        '<section id="recipes"><h2>Recipes and deployed versions</h2>'
        + (
            _table(["recipe", "feature table", "features", "label", "production", "versions"], recipe_rows)
            if recipe_rows
            else "<p>No recipes.</p>"
        )
        + "</section>"
    )
    if run:
        if run.quarantine is not None:
            total = sum(run.quarantine.values())
            rows = [[_e(reason), _rows(n)] for reason, n in sorted(run.quarantine.items())]
            quarantine = _table(["reason", "rows"], rows) + f"<p>{_rows(total)} rows quarantined in all.</p>"
        else:
            quarantine = "<p>This run has no quarantine table.</p>"
        parts.append(f'<section id="quarantine"><h2>Quarantine of ds={_e(run.ds)}</h2>{quarantine}</section>')
    parts.append(_json_health(catalog))
    parts.append(_coverage_summary(catalog))
    return _page("Overview", "\n".join(parts), 0, catalog)


def _json_health(catalog: Catalog) -> str:
    health = catalog.json_health
    intro = (
        '<section id="json-health"><h2>JSON-path health</h2><p class="hint">Every JSON key the models read (found in '
        "their rendered SQL), with the share of the run's JSON objects where it is missing, null, or not usable as "
        "the type the model reads it as. A key missing from 100% of the rows is misspelt or no longer sent.</p>"
    )
    if health is None:
        reads = [r for found in catalog.json_reads.values() for r in found]
        rows = [[_e(r.key), _e(r.type), _e(r.model), _e(r.column), _e(r.line)] for r in reads]
        note = "<p>No run given (<code>--ds</code>): the keys the models read, without their health.</p>"
        return intro + note + _table(["key", "read as", "model", "column", "line"], rows) + "</section>"
    parts = [intro]
    for column in health.columns:
        groups = column.groups
        headers = ["key", "read as", "models", "status", "missing (all)", *groups]
        rows = []
        for key in column.keys:
            total = key.total
            status = (
                '<span class="badge error">never present</span>'
                if key.never_present
                else '<span class="badge pass">present</span>'
            )
            cells = [
                f"<code>{_e(key.key)}</code>",
                _e(key.type),
                ", ".join(f'<a href="models/{_e(m)}.html">{_e(m)}</a>' for m in key.models),
                status,
                _percent(total.share(total.missing)),
            ]
            for g in groups:
                c = key.groups.get(g)
                if c is None or not c.objects:
                    cells.append("–")
                    continue
                cls = ' class="absent"' if c.missing == c.objects else ""
                cells.append(
                    f"<span{cls}>{_percent(c.share(c.missing))} · {_percent(c.share(c.null))} · "
                    f"{_percent(c.share(c.unusable))}</span>"
                )
            rows.append(cells)
        by = f", by {_e(column.group_by)}" if column.group_by else ""
        not_objects = sum(column.not_objects.values())
        parts.append(
            f"<h3>{_e(column.source)}.{_e(column.column)}{by}</h3>"
            f"<p>{_rows(sum(column.rows.values()))} rows; {_rows(not_objects)} hold no JSON object. Each "
            f"{_e(column.group_by or 'group')} column: missing · null · unusable, as shares of its JSON objects "
            "(grey: the key is in none of them).</p>"
            f'<div class="scroll">{_table(headers, rows, "health")}</div>'
        )
        unread = [
            [f"<code>{_e(k)}</code>", _rows(sum(v.values())), _e(", ".join(f"{g}: {n:,}" for g, n in v.items()))]
            for k, v in column.unread.items()
        ]
        parts.append(
            "<h4>Keys in the data that no model reads</h4>"
            + (_table(["key", "rows", "by group"], unread) if unread else "<p>None.</p>")
        )
    if health.not_measured:
        items = "".join(f"<li>{_e(m)}.{_e(c)}: {_e(why)}</li>" for m, c, why in health.not_measured)
        parts.append(f"<h4>Not measured</h4><ul>{items}</ul>")
    return "".join(parts) + "</section>"


def _coverage_summary(catalog: Catalog) -> str:
    rows, missed = [], []
    for name, coverage in catalog.coverage.items():
        share = _percent(coverage.reached_count / coverage.branch_count) if coverage.branch_count else "–"
        rows.append(
            [
                f'<a href="models/{_e(name)}.html#coverage">{_e(name)}</a>',
                str(len(coverage.cases)),
                str(coverage.branch_count),
                str(coverage.reached_count),
                share if not coverage.error else _e(coverage.error),
            ]
        )
        for case, branch in coverage.missed():
            missed.append(
                [
                    f'<a href="models/{_e(name)}.html#coverage">{_e(name)}</a>',
                    _e(branch.line or case.line),
                    _e(case.title),
                    f"<code>{_e(branch.label)}</code>",
                ]
            )
    return (
        '<section id="coverage"><h2>CASE WHEN coverage</h2><p class="hint">Which branches of each CASE the unit '
        "tests' given rows reach (<code>make test</code> prints the same table).</p>"
        + _table(["model", "CASE", "branches", "reached", "coverage"], rows)
        + "<h3>Branches no unit test reaches</h3>"
        + (_table(["model", "line", "CASE", "branch"], missed) if missed else "<p>None.</p>")
        + "</section>"
    )


def _value_table(rows: Sequence[Any]) -> str:
    rows = [r for r in rows if isinstance(r, dict)]
    if not rows:
        return "<p><em>no rows</em></p>"
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return _table(columns, ([_e(r.get(c, "")) for c in columns] for r in rows), "values")


def _model(catalog: Catalog, name: str) -> str:
    compiled, run = catalog.compiled, catalog.run
    rendered = compiled.rendered[name]
    props = catalog.project.properties.models.get(name)
    config = rendered.config
    settings = [f"materialized: <b>{_e(config.materialized)}</b>"]
    if config.partition_by:
        settings.append(f"partition_by: {_e(', '.join(config.partition_by))}")
    if config.repartition:
        settings.append(f"repartition: {_e(config.repartition)}")
    if config.cache:
        settings.append("cache")
    if config.tags:
        settings.append(f"tags: {_e(', '.join(config.tags))}")
    reads = [f'<a href="{_e(r)}.html">{_e(r)}</a>' for r in rendered.refs] + [
        f'<a href="../index.html#source-{_e(s)}">{_e(catalog.project.sources[s].call)}</a>' for s in rendered.sources
    ]
    read_by = [f'<a href="{_e(d)}.html">{_e(d)}</a>' for d in catalog.dependants(name)] + [
        f'<a href="../index.html#recipe-{_e(r.name)}">recipe {_e(r.name)}</a>' for r in catalog.recipes_of(name)
    ]
    parts = [
        f'<h1 id="model-name">{_e(name)}</h1>',
        f'<p class="file">{_e(catalog.model_file(name))}</p>',
        f'<p class="description">{_e(props.description if props else "") or "<em>No description.</em>"}</p>',
        f'<p class="config">{" · ".join(settings)}</p>',
        f"<p>Reads: {', '.join(reads) or '–'}. Read by: {', '.join(read_by) or '–'}.</p>",
    ]
    if run:
        parts.append(f"<p>Rows in ds={_e(run.ds)}: <b>{_rows(run.model_rows.get(name))}</b></p>")
    parts.append(
        f'<section id="graph"><div class="graph-box">{graph.svg(catalog.nodes, catalog.edges, "../")}</div></section>'
    )
    descriptions = {c.name: c.description for c in (props.columns if props else ())}
    declared = {c.name: c.data_type for c in (props.columns if props else ())}
    column_tests: dict[str, list[str]] = {}
    specs = {spec.where: spec for spec in (props.tests if props else ())}
    for test in compiled.tests:
        spec = specs.get(test.where)
        if test.model == name and spec is not None and spec.column:
            column_tests.setdefault(spec.column, []).append(test.name)
    columns = catalog.schemas.get(name) or [(c, declared.get(c) or "?") for c in descriptions]
    parts.append(
        '<section id="columns"><h2>Columns</h2>'
        + _table(
            ["column", "type", "description", "tests"],
            (
                [f"<code>{_e(c)}</code>", _e(t), _e(descriptions.get(c, "")), _e(", ".join(column_tests.get(c, [])))]
                for c, t in columns
            ),
        )
        + "</section>"
    )
    results = {(r.get("name"), r.get("where")): r for r in _test_results(catalog, name)}
    test_rows = []
    for test in (t for t in compiled.tests if t.model == name):
        result = results.get((test.name, test.where))
        test_rows.append(
            [
                f"<code>{_e(test.name)}</code>",
                _e(test.severity),
                _e(test.where),
                _status(result.get("status") if result else None),
                _e(result.get("message") if result else ""),
            ]
        )
    parts.append(
        '<section id="data-tests"><h2>Data tests</h2>'
        + (_table(["test", "severity", "defined at", "last run", "result"], test_rows) if test_rows else "<p>None.</p>")
        + "</section>"
    )
    unit_parts = []
    for spec, where in props.unit_tests if props else ():
        given = "".join(
            f"<h4>given {_e(item.get('input'))}</h4>{_value_table(item.get('rows') or [])}"
            for item in spec.get("given") or []
            if isinstance(item, dict)
        )
        expect = _value_table((spec.get("expect") or {}).get("rows") or [])
        unit_parts.append(
            f'<details class="unit-test" open><summary><code>{_e(spec.get("name"))}</code> '
            f'<span class="where">{_e(where)}</span></summary>{given}<h4>expect</h4>{expect}</details>'
        )
    parts.append(
        '<section id="unit-tests"><h2>Unit tests</h2>' + ("".join(unit_parts) or "<p>None.</p>") + "</section>"
    )
    parts.append(_model_coverage(catalog, name))
    reads_of = catalog.json_reads.get(name) or []
    if reads_of:
        rows = [[f"<code>{_e(r.key)}</code>", _e(r.type), _e(r.column), _e(r.function), _e(r.line)] for r in reads_of]
        parts.append(
            '<section id="json-keys"><h2>JSON keys read</h2>'
            + _table(["key", "read as", "column", "function", "line"], rows)
            + '<p><a href="../index.html#json-health">Their health in the run</a></p></section>'
        )
    parts.append(f'<section id="sql"><h2>Rendered SQL</h2>{highlight_sql(rendered.sql)}</section>')
    parts.append(
        f'<details id="template"><summary>Model file {_e(catalog.model_file(name))}</summary>'
        f"{highlight_sql(rendered.template, 'F')}</details>"
    )
    return _page(name, "\n".join(parts), 1, catalog)


def _model_coverage(catalog: Catalog, name: str) -> str:
    coverage = catalog.coverage.get(name)
    head = '<section id="coverage"><h2>CASE WHEN coverage</h2>'
    if coverage is None:
        return head + "<p>Not measured.</p></section>"
    if coverage.error:
        return head + f"<p>Not measured: {_e(coverage.error)}</p></section>"
    if not coverage.cases:
        return head + "<p>No CASE expressions.</p></section>"
    parts = [head, f"<p>{coverage.reached_count} of {coverage.branch_count} branches reached by the unit tests.</p>"]
    for case in coverage.cases:
        rows = []
        for branch in case.branches:
            by = coverage.fixtures(case, branch)
            state = (
                f'<span class="badge warn">{_e(case.not_measured)}</span>'
                if case.not_measured
                else (
                    '<span class="badge pass">reached</span>' if by else '<span class="badge error">not reached</span>'
                )
            )
            line = f'<a href="#F{branch.line}">{branch.line}</a>' if branch.line else "?"
            rows.append([line, f"<code>{_e(branch.label)}</code>", state, _e(", ".join(by))])
        headers = ["line in the file", "branch", "", "unit tests"]
        parts.append(f"<h3>{_e(case.title)}</h3>" + _table(headers, rows, "coverage"))
    if coverage.notes:
        parts.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in coverage.notes) + "</ul>")
    return "".join(parts) + "</section>"


def write_site(catalog: Catalog, output: Path) -> Path:
    """Write the site into ``output``, replacing an earlier site there in one rename (a failure leaves it as it
    was); the path of its index. A folder holding anything else is refused, never emptied."""
    from jobs.errors import ConfigError
    from jobs.spark.atomic import atomic_directory

    if output.is_dir() and any(output.iterdir()) and not (output / "assets" / "site.css").is_file():
        raise ConfigError(
            f"{output} already holds files that are not a site `retrain docs` wrote. Give --output an empty or new "
            "folder (the site replaces the folder's contents)."
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(output) as staging:
        (staging / "models").mkdir(parents=True)
        (staging / "assets").mkdir()
        for asset in ("site.css", "site.js"):
            text = resources.files("jobs.sqlproject.docsite").joinpath(asset).read_text(encoding="utf-8")
            (staging / "assets" / asset).write_text(text, encoding="utf-8")
        (staging / "index.html").write_text(_index(catalog), encoding="utf-8")
        for name in catalog.compiled.order:
            (staging / "models" / f"{name}.html").write_text(_model(catalog, name), encoding="utf-8")
    return output / "index.html"


def _not_passing(results: list[dict]) -> str:
    """``1 failing, 2 warnings``: a warning is not a failure, and the badge says which it shows."""
    counts = {status: sum(1 for r in results if r.get("status") == status) for status in ("error", "warn")}
    others = len(results) - counts["error"] - counts["warn"]  # skipped: the model it reads was not built
    words = [
        f"{counts['error']} failing" if counts["error"] else "",
        f"{counts['warn']} warning{'s' if counts['warn'] > 1 else ''}" if counts["warn"] else "",
        f"{others} not run" if others else "",
    ]
    return ", ".join(word for word in words if word)
