"""``retrain compile|ls|check|transform``: the SQL project."""

from __future__ import annotations

import argparse
import json

from jobs.commands.common import add_project_arguments, add_run_arguments, project_dir, run_context, vars_overrides
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    compile_ = subparsers.add_parser("compile", help="print the selected models' SQL as Spark will run it")
    ls = subparsers.add_parser("ls", help="list the models in run order, with materialization and dependencies")
    check = subparsers.add_parser(
        "check", help="render and analyse every model against the sources' declared schemas (reads no data)"
    )
    transform = subparsers.add_parser(
        "transform", help="build the models over the run's raw snapshots, then run the data tests"
    )
    for parser, handler in ((compile_, run_compile), (ls, run_ls), (check, run_check)):
        add_run_arguments(parser, required=False)
        add_project_arguments(parser, selectable=True)
        parser.set_defaults(handler=handler)
    add_run_arguments(transform)
    add_project_arguments(transform, selectable=True)
    transform.add_argument(
        "--from-database", action="store_true", help="read sources over JDBC instead of the extract's snapshots"
    )
    transform.add_argument("--skip-data-tests", action="store_true", help="build only; do not run data tests")
    transform.add_argument(
        "--json", action="store_true", help="print the result as JSON (also in the run's transform.json)"
    )
    transform.set_defaults(handler=run_transform)


def _compiled(settings: Settings, args: argparse.Namespace):
    """The project built once (rendered models, graph, run order, data tests): no Spark needed."""
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.transform import open_project

    return CompiledProject.build(open_project(settings, project_dir(args), vars_overrides(args)), run_context(args))


def _selected_models(settings: Settings, args: argparse.Namespace):
    """The project and its selected models, rendered, in run order (no Spark needed)."""
    compiled = _compiled(settings, args)
    return compiled.project, compiled.selected(args.select, args.exclude)


def run_compile(settings: Settings, args: argparse.Namespace) -> int:
    project, models = _selected_models(settings, args)
    for model in models:
        print(f"-- {model.name} ({project.relative(model.model.path)}, {model.config.materialized})")
        print(model.sql)
    return 0


def run_ls(settings: Settings, args: argparse.Namespace) -> int:
    project, models = _selected_models(settings, args)
    for model in models:
        config = model.config
        details = [config.materialized]
        if config.partition_by:
            details.append("partition_by=" + ",".join(config.partition_by))
        if config.repartition:
            details.append(f"repartition={config.repartition}")
        if config.cache:
            details.append("cache")
        if config.tags:
            details.append("tags=" + ",".join(config.tags))
        sources = [project.sources[s] for s in model.sources]
        names = [f"source:{s.group}.{s.table_name}" if s.group else f"source:{s.name}" for s in sources]
        reads = names + [f"seed:{s}" for s in model.seeds] + list(model.refs)
        print(f"{model.name:<24} {' '.join(details):<52} <- {', '.join(reads) or '-'}")
    return 0


def run_check(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.spark.session import spark_session
    from jobs.sqlproject.datatests import analyse
    from jobs.sqlproject.runner import SqlRunner
    from jobs.sqlproject.unittests import check_unit_tests

    compiled = _compiled(settings, args)  # every YAML file, every model and every data test compiled here
    project = compiled.project
    spark = spark_session(settings, "retrain-check", require_jdbc=False)
    partial = bool(args.select or args.exclude)
    checked = SqlRunner(spark, compiled).check(args.select, args.exclude)
    for rendered, df in checked:
        columns = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in df.schema.fields)
        print(f"OK {rendered.name} ({project.relative(rendered.model.path)}): {columns}")
    if not partial:
        analyse(spark, compiled.tests)
        cases = check_unit_tests(spark, compiled)
        print(f"{len(compiled.tests)} data test(s) and {cases} unit test(s) compiled and analysed.")
    print(f"{len(checked)} model(s) analysed against the declared source schemas; no data was read.")
    return 0


def run_transform(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.spark.session import spark_session
    from jobs.transform import transform

    ctx = run_context(args)
    spark = spark_session(
        settings,
        "retrain-transform",
        require_jdbc=args.from_database,
        log_file=settings.run_folder(ctx.ds_str).logs / "spark-transform.log",
    )
    outcome = transform(
        settings,
        ctx,
        spark,
        project_dir=project_dir(args),
        vars_overrides=vars_overrides(args),
        select=args.select,
        exclude=args.exclude,
        from_database=args.from_database,
        run_data_tests=not args.skip_data_tests,
    )
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=2))
        return 0
    for run in outcome.models:
        rows = f"{run.rows:>10,} rows" if run.rows is not None else f"{'':>15}"
        print(f"{run.name:<24} {run.materialized:<6} {rows} {run.seconds:>7.1f}s  {run.path or ''}")
    if not outcome.data_tests_ran:
        reason = "--skip-data-tests" if args.skip_data_tests else "a --select build does not run them"
        print(f"Data tests: not run ({reason}).")
        return 0
    failed = [t for t in outcome.tests if not t.passed]
    print(f"Data tests: {len(outcome.tests) - len(failed)} passed, {len(failed)} warning(s).")
    for test in failed:
        print(f"  WARN {test.model}: {test.name}: {test.message}")
    return 0
