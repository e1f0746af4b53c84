"""``retrain demo traffic``: a week of requests through the serving backend, with the outcomes verified since."""

from __future__ import annotations

import argparse
import json

from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="demo helpers (a week of traffic through the serving backend)")
    parser.set_defaults(handler=lambda settings, args: parser.print_help() or 2)
    commands = parser.add_subparsers(dest="demo_command", metavar="SUBCOMMAND")
    traffic = commands.add_parser(
        "traffic",
        help="post a week of demo requests to the backend's /predict/{model}, then record the verified outcomes",
        description="Draws patients' inputs per screening model (a few with the usual defects), posts each to "
        "BACKEND_URL/predict/{model}, which logs it with the model_version that answered, then places the served "
        "records in the simulated week [--from, --from + --days) and sets verified_outcome, and verified_at (when it "
        "was confirmed), for those confirmed before the week ends (1 + Exp(2) days after the visit; 20% never). "
        "Deterministic for a --seed.",
    )
    traffic.add_argument(
        "--from", dest="start", required=True, help="start of the week, e.g. 2026-11-15T02:00:00+00:00"
    )
    traffic.add_argument("--days", type=int, default=7, help="length of the simulated period (default 7)")
    traffic.add_argument("--requests", type=int, default=8_000, help="requests to send (default 8000)")
    traffic.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    traffic.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    traffic.add_argument("--json", action="store_true", help="print the result as JSON")
    traffic.set_defaults(handler=run_traffic, uses_database=True)

    run = commands.add_parser(
        "run",
        help="the whole demo (`make demo`): seed, backend, two weekly DAG runs a quarter apart, traffic, backtest",
        description="Seeds the embedded PostgreSQL with half a year of drifting records ending a week before "
        "--last-sunday, starts the serving backend with a fresh SECRET_KEY and admin token, runs `airflow dags test "
        "model_retraining` for the Sunday twelve weeks before --last-sunday, sends the last week's requests through "
        "the backend (outcomes verified as they arrive), runs the DAG for --last-sunday, replays the weeks between "
        "with `retrain backtest`, stops what it started and prints a summary. Everything goes under .local/demo/.",
    )
    run.add_argument("--rows", type=int, default=200_000, help="seeded health records (default 200000)")
    run.add_argument("--seed", type=int, default=42, help="random seed of the data and the traffic (default 42)")
    run.add_argument("--requests", type=int, default=8_000, help="requests in the week of traffic (default 8000)")
    run.add_argument("--last-sunday", default="2026-11-22", help="the last run's Sunday (default 2026-11-22)")
    run.set_defaults(handler=run_demo)


def run_traffic(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from jobs.demo.traffic import serve_week
    from jobs.errors import ConfigError

    try:
        start = datetime.fromisoformat(args.start)
    except ValueError:
        raise ConfigError(
            f"--from must be an ISO timestamp such as 2026-11-15T02:00:00+00:00. Got {args.start!r} instead."
        ) from None
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start
    from jobs.postgres.embedded import loading_database

    report = serve_week(
        loading_database(settings),  # it writes the confirmed outcomes, which the pipeline's role may not
        settings.backend_url,
        start=start,
        days=args.days,
        requests_count=args.requests,
        seed=args.seed,
        concurrency=args.concurrency,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    served = ", ".join(f"{m} {v}: {n}" for m, counts in report.versions.items() for v, n in counts.items())
    print(
        f"served {report.served:,} of {report.requests:,} requests in {report.seconds:.0f}s ({served}); "
        f"{report.rejected} rejected; {report.verified:,} outcomes verified by {report.end}"
    )
    return 0


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Progress and the summary on the console; every library's log lines in .local/demo/logs/demo.log."""
    import logging
    from datetime import date

    from jobs.demo.run import run_demo as demo
    from jobs.demo.run import summary_lines
    from jobs.errors import ConfigError

    try:
        last_sunday = date.fromisoformat(args.last_sunday)
    except ValueError:
        raise ConfigError(f"--last-sunday must be a date such as 2026-11-22. Got {args.last_sunday!r}.") from None
    log_file = settings.root / ".local" / "demo" / "logs" / "demo.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)

    result = demo(
        settings,
        lambda line: print(line, flush=True),
        rows=args.rows,
        seed=args.seed,
        requests=args.requests,
        last_sunday=last_sunday,
    )
    print()
    for line in summary_lines(result):
        print(line)
    print("\nReports (with a champion-vs-challenger plot):")
    for path in result["reports"]:
        print(f"  {path}")
    return 0
