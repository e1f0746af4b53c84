"""Does ``POST /predict/{model}`` keep answering while the models are reloaded? Requests/s, p50/p99, failures.

Starts a throwaway embedded PostgreSQL and a model store in a temporary directory, fits two versions of the real
``models/diabetes.py`` recipe on synthetic inputs, and runs the real backend (``python -m serving``) on a free
loopback port. Then, with the same concurrent clients, two phases of equal length:

- baseline: predictions only;
- reload: the same, while the production pointer flips between the two versions and ``/admin/reload_models`` is
  called every ``--reload-every`` seconds during the middle third of the phase.

Every prediction is logged into ``health_records`` as in production. Reports both phases and their ratios, and
the number of failed requests (the claim: zero during reloads).

    .venv/bin/python -m bench.serving_load                       # 8 clients, 2 x 15 s
    .venv/bin/python -m bench.serving_load --clients 16 --seconds 30

Prints a table and writes bench/results/serving_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import requests

from jobs.ml.recipes import features_frame, load_recipes
from jobs.ml.store import ModelStore
from jobs.ml.tokens import mint
from jobs.postgres.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
MODEL = "diabetes"
SECRET_KEY = "bench-secret-key-0123456789abcdefghij"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic_rows(n: int, seed: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Plausible diabetes inputs and a label that depends on them (enough for a real fitted pipeline)."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "age": float(rng.integers(18, 90)),
            "bmi": float(rng.normal(28, 5)),
            "glucose": float(rng.normal(105, 25)),
            "blood_pressure": float(rng.normal(78, 12)),
            "insulin": float(rng.normal(90, 40)),
            "pregnancies": float(rng.integers(0, 6)),
            "family_history": float(rng.integers(0, 2)),
            "physical_activity": str(rng.choice(["low", "moderate", "high"])),
        }
        for _ in range(n)
    ]
    risk = np.array([0.04 * (r["glucose"] - 105) + 0.08 * (r["bmi"] - 28) + rng.normal() for r in rows])
    return rows, (risk > 0).astype(int)


def fit_versions(store: ModelStore) -> list[str]:
    recipe = load_recipes(ROOT / "models")[MODEL]
    versions = []
    for seed in (1, 2):
        rows, labels = synthetic_rows(2_000, seed)
        estimator = recipe.build_estimator().fit(features_frame(recipe, rows), labels)
        version, _ = store.write(
            MODEL, "2026-11-22", estimator, {"accuracy": None}, {"features": list(recipe.features)}
        )
        versions.append(version)
    return versions


def start_backend(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    full_env = {**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}, **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=full_env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The backend exited: {log_path.read_text()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("The backend did not start within 60 s.")


def run_phase(url: str, clients: int, seconds: float, reload: Any | None) -> dict[str, Any]:
    """``clients`` threads posting predictions for ``seconds``; ``reload(stop_at)`` runs alongside when given."""
    payloads, _ = synthetic_rows(500, seed=7)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[str] = []
    versions: set[str] = set()
    deadline = time.perf_counter() + seconds

    def client(i: int) -> None:
        with requests.Session() as session:
            n = i
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    r = session.post(f"{url}/predict/{MODEL}", json=payloads[n % len(payloads)], timeout=30)
                    if r.status_code != 200:
                        failures.append(f"HTTP {r.status_code}: {r.text[:200]}")
                    else:
                        versions.add(r.json()["version"])
                except requests.RequestException as e:
                    failures.append(type(e).__name__)
                latencies[i].append(time.perf_counter() - started)
                n += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    reloads = reload(started, seconds) if reload else []
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    all_ms = np.array([x for per in latencies for x in per]) * 1000
    return {
        "requests": int(all_ms.size),
        "failed": len(failures),
        "failures": sorted(set(failures))[:5],
        "requests_per_s": round(all_ms.size / elapsed, 1),
        "p50_ms": round(float(np.percentile(all_ms, 50)), 1),
        "p99_ms": round(float(np.percentile(all_ms, 99)), 1),
        "max_ms": round(float(all_ms.max()), 1),
        "reloads": reloads,
        "versions_served": sorted(versions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--reload-every", type=float, default=0.5, help="seconds between reloads (middle third)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        tmp_path = Path(tmp)
        cluster = EmbeddedPostgres(tmp_path / "pg", _free_port())
        cluster.start()
        backend = None
        try:
            db = cluster.database_url()
            store = ModelStore(tmp_path / "store")
            versions = fit_versions(store)
            store.promote(MODEL, versions[0], reason="bench", actor="bench")
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            env = {
                "MODEL_STORE": str(store.root),
                "MODELS_DIR": str(ROOT / "models"),
                "SECRET_KEY": SECRET_KEY,
                "DATABASE_URL": db.full_url(),
            }
            backend = start_backend(env, port, tmp_path / "backend.log")
            token = mint(SECRET_KEY, role="admin", ttl=timedelta(hours=1))

            def reloader(started: float, seconds: float) -> list[dict[str, Any]]:
                done = []
                time.sleep(max(0.0, started + seconds / 3 - time.perf_counter()))
                i = 1
                while time.perf_counter() < started + 2 * seconds / 3:
                    store.promote(MODEL, versions[i % 2], reason="bench", actor="bench")
                    t0 = time.perf_counter()
                    r = requests.post(
                        f"{url}/admin/reload_models", headers={"Authorization": f"Bearer {token}"}, timeout=60
                    )
                    done.append({"status": r.status_code, "ms": round((time.perf_counter() - t0) * 1000, 1)})
                    i += 1
                    time.sleep(args.reload_every)
                return done

            run_phase(url, args.clients, 2.0, None)  # warm-up: connections, the pool, first predictions
            baseline = run_phase(url, args.clients, args.seconds, None)
            during = run_phase(url, args.clients, args.seconds, reloader)
        finally:
            if backend is not None:
                backend.terminate()
                backend.wait(timeout=30)
            cluster.stop()

    ratios = {k: round(during[k] / baseline[k], 2) for k in ("requests_per_s", "p50_ms", "p99_ms")}
    print(f"{args.clients} clients, {args.seconds:g} s per phase, model {MODEL}")
    print(f"{'phase':<10} {'requests':>9} {'failed':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} reloads")
    for name, r in (("baseline", baseline), ("reloading", during)):
        reloads = f"{len(r['reloads'])} ({sum(x['status'] == 200 for x in r['reloads'])} ok)" if r["reloads"] else "-"
        print(
            f"{name:<10} {r['requests']:>9,} {r['failed']:>7} {r['requests_per_s']:>8.1f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {reloads}"
        )
    print(f"reloading / baseline: req/s x{ratios['requests_per_s']}, p50 x{ratios['p50_ms']}, p99 x{ratios['p99_ms']}")
    print(f"versions served while reloading: {', '.join(during['versions_served'])}")
    out = ROOT / "bench" / "results" / "serving_load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "clients": args.clients,
        "seconds": args.seconds,
        "baseline": baseline,
        "reloading": during,
        "ratios": ratios,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
