"""How fast does ``retrain db seed`` generate and load the demo data? Target: 1,000,000 rows in under a minute.

Starts a throwaway embedded PostgreSQL in a temporary directory (so the project's own cluster is left alone),
then times generation and the COPY load separately for each row count.

    .venv/bin/python -m bench.seed_load                      # 1,000,000 rows
    .venv/bin/python -m bench.seed_load --rows 200000 1000000

Prints a table and writes bench/results/seed_load.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from pathlib import Path

from jobs.demo.generator import generate
from jobs.demo.loader import load
from jobs.postgres.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="seed-bench-") as tmp:
        cluster = EmbeddedPostgres(Path(tmp) / "pg", _free_port())
        cluster.start()
        try:
            for rows in args.rows:
                started = time.perf_counter()
                data = generate(rows, args.seed)
                generated = time.perf_counter() - started
                loaded = load(cluster.admin_url(), data)  # the tables' owner: the pipeline's role cannot
                total = generated + loaded.seconds
                results.append(
                    {
                        "rows": rows,
                        "generate_s": round(generated, 2),
                        "load_s": round(loaded.seconds, 2),
                        "total_s": round(total, 2),
                        "load_rows_per_s": round(loaded.rows_per_second),
                        "total_rows_per_s": round(rows / total),
                    }
                )
        finally:
            cluster.stop()

    print(f"{'rows':>10} {'generate s':>11} {'load s':>8} {'total s':>8} {'load rows/s':>12} {'total rows/s':>13}")
    for r in results:
        print(
            f"{r['rows']:>10,} {r['generate_s']:>11.1f} {r['load_s']:>8.1f} {r['total_s']:>8.1f} "
            f"{r['load_rows_per_s']:>12,} {r['total_rows_per_s']:>13,}"
        )
    out = ROOT / "bench" / "results" / "seed_load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
