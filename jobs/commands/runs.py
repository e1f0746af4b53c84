"""``retrain runs``: list the run folders, and delete the old ones (``prune``)."""

from __future__ import annotations

import argparse

from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("runs", help="list the run folders under DATA_DIR/runs; delete the old ones")
    commands = parser.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="each run's date, the steps it holds and the disk it alone takes")
    listing.set_defaults(handler=run_list)
    pruning = commands.add_parser(
        "prune",
        help="delete the runs older than the newest --keep N complete ones (snapshots, tables, reports and logs)",
    )
    pruning.add_argument(
        "--keep", type=int, required=True, metavar="N", help="how many of the newest complete runs stay (at least 1)"
    )
    pruning.add_argument("--dry-run", action="store_true", help="say what would be deleted, and delete nothing")
    pruning.set_defaults(handler=run_prune)


def run_list(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.run_context import RunFolder, disk_usage, human_bytes, steps_done

    runs = RunFolder.every(settings.data_dir)
    if not runs:
        print(f"No runs under {settings.data_dir / 'runs'}.")
    for folder in runs:
        steps = ", ".join(steps_done(folder)) or "nothing yet"
        print(f"{folder.ds}  {human_bytes(disk_usage([folder.path])):>9}  {steps}")
    return 0


def run_prune(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.run_context import human_bytes, plan_prune, prune

    plan = plan_prune(settings.data_dir, args.keep)
    if not plan.kept and not plan.leftovers:
        print(f"No runs under {settings.data_dir / 'runs'}.")
        return 0
    if args.dry_run:
        for folder in plan.deleted:
            print(f"Would delete the run of {folder.ds} ({folder.path}).")
        for aside in plan.leftovers:
            print(f"Would finish deleting {aside}, which an interrupted prune left.")
    else:
        prune(plan)  # logs each run it deletes
    kept = ", ".join(f.ds for f in plan.kept) or "none"
    freed = human_bytes(plan.freed_bytes)
    if args.dry_run:
        print(f"{len(plan.deleted)} run(s) would be deleted, freeing {freed}; kept: {kept}.")
    else:
        print(f"{len(plan.deleted)} run(s) deleted, {freed} freed; kept: {kept}.")
    return 0
