"""``retrain class-archive``: build the JVM class archive that shortens every step's Spark start."""

from __future__ import annotations

import argparse
import time

from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "class-archive",
        help="build the class-data-sharing archive of Spark's classes (SPARK_CLASS_ARCHIVE); nothing to do if current",
        description="Each step's Spark driver maps this archive of Spark's classes, already parsed and verified, "
        "instead of loading them from the jars, so a session starts seconds sooner. `make setup` builds it "
        "(about a minute, once); a stale one (after a JDK or PySpark upgrade) is ignored by the JVM and rebuilt "
        "here.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when the archive is current")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.spark.class_archive import build

    if settings.spark_class_archive is None:
        print("The class archive is off (SPARK_CLASS_ARCHIVE=off): nothing to build.")
        return 0
    started = time.monotonic()
    archive, built = build(settings, force=args.force)
    if built:
        size = archive.stat().st_size / 2**20
        print(f"Built {archive} ({size:.0f} MiB) in {time.monotonic() - started:.0f}s.")
    else:
        print(f"{archive} is current.")
    return 0
