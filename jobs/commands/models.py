"""``retrain models list|show|promote|rollback``: the model store."""

from __future__ import annotations

import argparse
import json

from jobs.settings import Settings

RELOAD_HINT = (
    "Only the pointer moved: the backend serves it once it reloads "
    '(`curl -X POST "$BACKEND_URL/admin/reload_models" -H "Authorization: Bearer $ADMIN_JWT_TOKEN"`).'
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="the model store: list, show, promote, rollback")
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")
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
            auc = store.metrics(model, version).get("roc_auc")
            metadata = store.metadata(model, version)
            threshold = metadata.get("operating_threshold")
            print(
                f"{mark} {model:<12} {version:<22} ROC AUC {auc}  threshold {threshold}  "
                f"train rows {metadata.get('train_rows')}"
            )
    return 0


def run_show(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.errors import ModelStoreError

    store = _store(settings)
    version = args.version
    pointer = store.production(args.model)
    if version is None:
        if pointer is None:
            models = store.models()
            if args.model not in models:
                known = ", ".join(models) or "none yet"
                raise ModelStoreError(f"The model store has no model {args.model!r} (its models: {known}).")
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
    print(RELOAD_HINT)
    return 0


def run_rollback(settings: Settings, args: argparse.Namespace) -> int:
    change = _store(settings).rollback(args.model, reason=args.reason, actor="cli")
    print(f"{change.model}: production rolled back from {change.previous} to {change.version}.")
    print(RELOAD_HINT)
    return 0
