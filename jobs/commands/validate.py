"""``retrain validate``: the gate: score production and the new versions on the same holdout, and decide."""

from __future__ import annotations

import argparse

from jobs.commands.common import add_run_arguments, run_context
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="score production and the new versions on the same holdout; write decision.json"
    )
    add_run_arguments(parser)
    parser.add_argument(
        "--force",
        nargs="*",
        metavar="MODEL",
        help="deploy whatever the gate says: the named models, or every trained model when none is named "
        "(recorded as forced in decision.json)",
    )
    parser.add_argument("--force-reason", help="why the deployment is forced (required with --force; in decision.json)")
    parser.add_argument("--json", action="store_true", help="print decision.json")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.errors import ConfigError
    from jobs.validate import validate

    if args.force_reason and args.force is None:
        raise ConfigError("--force-reason is the reason for --force, which was not given: add --force [MODEL ...].")
    force = True if args.force == [] else (args.force or False)
    ctx = run_context(args)
    result = validate(settings, ctx, force=force, force_reason=args.force_reason)
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
