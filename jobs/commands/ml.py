"""``retrain train|validate`` and ``retrain models list|show|promote|rollback``: training, the gate, the store."""

from __future__ import annotations

import argparse
import json

from jobs.commands.common import add_project_arguments, add_run_arguments, project_dir, run_context, vars_overrides
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train one model per recipe in models/ on the run's feature tables")
    add_run_arguments(train)
    add_project_arguments(train)
    train.add_argument("-m", "--model", action="append", dest="models", help="only this model (repeatable)")
    train.add_argument("--json", action="store_true", help="print the result as JSON (also in the run's train.json)")
    train.set_defaults(handler=run_train)

    validate = subparsers.add_parser(
        "validate", help="score production and the new versions on the same holdout; write decision.json"
    )
    add_run_arguments(validate)
    validate.add_argument(
        "--force", nargs="*", metavar="MODEL",
        help="deploy whatever the gate says: the named models, or every trained model when none is named "
             "(recorded as forced in decision.json)",
    )  # fmt: skip
    validate.add_argument("--force-reason", help="why the deployment is forced (recorded in decision.json)")
    validate.add_argument("--json", action="store_true", help="print decision.json")
    validate.set_defaults(handler=run_validate)

    models = subparsers.add_parser("models", help="the model store: list, show, promote, rollback")
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    list_ = sub.add_parser("list", help="every model and version; '*' marks production")
    list_.set_defaults(handler=run_list)
    show = sub.add_parser("show", help="a version's metadata and metrics (default: the production version)")
    show.add_argument("model")
    show.add_argument("version", nargs="?")
    show.set_defaults(handler=run_show)
    promote = sub.add_parser(
        "promote", help="point production at a version (only the pointer: `retrain deploy` reloads the backend)"
    )
    promote.add_argument("model")
    promote.add_argument("version")
    promote.add_argument("--reason", required=True, help="why (kept in the history)")
    promote.set_defaults(handler=run_promote)
    rollback = sub.add_parser("rollback", help="point production back at the previous production version")
    rollback.add_argument("model")
    rollback.add_argument("--reason", required=True, help="why (kept in the history)")
    rollback.set_defaults(handler=run_rollback)


def run_train(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.train import train

    result = train(
        settings, run_context(args), None, models=args.models, project_dir=project_dir(args),
        vars_overrides=vars_overrides(args),
    )  # fmt: skip
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 0
    for m in result.models:
        if m.version:
            accuracy = m.metrics["accuracy"] if m.metrics else float("nan")
            print(f"{m.model:<12} {m.version:<22} train {m.train_rows:>9,}  holdout {m.holdout_rows:>8,}  "
                  f"accuracy {accuracy:.4f}  label coverage {m.label_coverage:.1%}")  # fmt: skip
        else:
            print(f"{m.model:<12} skipped: {m.reason}")
    return 0


def run_validate(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.validate import validate

    force = True if args.force == [] else (args.force or False)
    ctx = run_context(args)
    result = validate(settings, ctx, None, force=force, force_reason=args.force_reason)
    if args.json:
        print(settings.run_folder(ctx.ds_str).decision.read_text(encoding="utf-8"))
        return 0
    for m in result.models:
        forced = " (FORCED)" if m.forced else ""
        versions = f"{m.challenger_version or '-'} vs production {m.champion_version or '-'}"
        print(f"{m.model:<12} {m.verdict}{forced}  {versions}")
        for reason in m.reasons:
            print(f"    {reason}")
    return 0


def _store(settings: Settings):
    from jobs.ml.store import ModelStore

    return ModelStore(settings.model_store)


def run_list(settings: Settings, args: argparse.Namespace) -> int:
    store = _store(settings)
    models = store.models()
    if not models:
        print(f"The model store {settings.model_store} is empty: run `retrain train --ds D` first.")
        return 0
    for model in models:
        pointer = store.production(model)
        for version in store.versions(model):
            mark = "*" if pointer and pointer.version == version else " "
            accuracy = store.metrics(model, version).get("accuracy")
            rows = store.metadata(model, version).get("train_rows")
            print(f"{mark} {model:<12} {version:<22} accuracy {accuracy}  train rows {rows}")
    return 0


def run_show(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.errors import ModelStoreError

    store = _store(settings)
    version = args.version
    pointer = store.production(args.model)
    if version is None:
        if pointer is None:
            raise ModelStoreError(f"Model {args.model!r} has no production version; name a version to show.")
        version = pointer.version
    payload = {
        "production": pointer.to_dict() if pointer else None,
        "metadata": store.metadata(args.model, version),
        "metrics": store.metrics(args.model, version),
    }
    print(json.dumps(payload, indent=2, sort_keys=True))
    return 0


def run_promote(settings: Settings, args: argparse.Namespace) -> int:
    pointer = _store(settings).promote(args.model, args.version, reason=args.reason, actor="cli")
    print(f"{pointer.model}: production is now {pointer.version} (sha256 {pointer.artifact_sha256[:12]}...).")
    print("Only the pointer moved; `retrain deploy` (or the DAG) reloads the serving backend.")
    return 0


def run_rollback(settings: Settings, args: argparse.Namespace) -> int:
    pointer = _store(settings).rollback(args.model, reason=args.reason, actor="cli")
    print(f"{pointer.model}: production is back to {pointer.version}.")
    return 0
