"""Does ``POST /predict/{model}`` keep answering, and log every answer once, while models are reloaded, promoted,
deployed and rolled back? Errors, p50/p99 against a baseline of the same run, and the records in PostgreSQL.

Starts a throwaway embedded PostgreSQL and a model store in a temporary directory, fits two versions of the real
``models/diabetes.py`` recipe on synthetic inputs (and writes a third that cannot be loaded), and runs the real
backend (``python -m serving``) on a free loopback port. Then, with the same concurrent clients, two phases of equal
length:

- **baseline**: predictions only;
- **faults**: the same, while a controller runs these in turn, from 10% to 90% of the phase, ``--fault-every``
  seconds apart: a promote and a reload; a whole ``deploy`` (promote, reload, verify versions and hashes); a
  ``rollback`` and a reload; a ``deploy`` of the version that cannot be loaded (the backend answers 409, deploy
  restores the pointer, re-syncs the backend and fails). After each, the backend must serve what the store names.

Every prediction carries a unique ``request_uid`` in its body, which the backend logs with it into
``health_records``. After the phases the table is read back: each prediction answered 200 must be there exactly once,
with the record id and model version it was answered with, and nothing else may be.

Bounded and local: both servers listen on 127.0.0.1 only; each phase stops after ``--seconds`` or
``--max-requests`` requests, whichever comes first.

    .venv/bin/python -m bench.serving_load                       # 8 clients, 2 x 20 s
    .venv/bin/python -m bench.serving_load --clients 16 --seconds 30

Prints a table and writes bench/results/serving_load.json. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
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
DS = "2026-11-22"
SECRET_KEY = "bench-secret-key-0123456789abcdefghij"
RESULT = ROOT / "bench" / "results" / "serving_load.json"


class CannotLoad:
    """Pickles fine, fails to unpickle (``int('not a model')``): a promoted version the backend cannot load."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (int, ("not a model",))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic_rows(n: int, seed: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Plausible diabetes inputs (inside the recipe's ranges) and a label that depends on them."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "age": float(rng.integers(18, 90)),
            "bmi": float(np.clip(rng.normal(28, 5), 15, 60)),
            "glucose": float(np.clip(rng.normal(105, 25), 50, 300)),
            "blood_pressure": float(np.clip(rng.normal(78, 12), 40, 130)),
            "insulin": float(np.clip(rng.normal(90, 40), 2, 800)),
            "pregnancies": float(rng.integers(0, 6)),
            "family_history": float(rng.integers(0, 2)),
            "physical_activity": str(rng.choice(["low", "moderate", "high"])),
        }
        for _ in range(n)
    ]
    risk = np.array([0.04 * (r["glucose"] - 105) + 0.08 * (r["bmi"] - 28) + rng.normal() for r in rows])
    return rows, (risk > 0).astype(int)


def fit_versions(store: ModelStore) -> tuple[list[str], str]:
    """Two versions fitted on different samples, and one that cannot be loaded."""
    recipe = load_recipes(ROOT / "models")[MODEL]
    metadata = {"features": list(recipe.features)}
    versions = []
    for seed in (1, 2):
        rows, labels = synthetic_rows(2_000, seed)
        estimator = recipe.build_estimator().fit(features_frame(recipe, rows), labels)
        versions.append(store.write(MODEL, DS, estimator, {"accuracy": None}, metadata)[0])
    broken = store.write(MODEL, DS, CannotLoad(), {"accuracy": None}, metadata)[0]
    return versions, broken


def start_backend(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "ADMIN_JWT_TOKEN")}
    process = subprocess.Popen(
        [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**full_env, **env},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The backend exited: {log_path.read_text()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("The backend did not start within 120 s.")


class Phase:
    """``clients`` threads posting predictions for ``seconds`` (at most ``max_requests``); every answer recorded."""

    def __init__(self, name: str, url: str, clients: int, seconds: float, max_requests: int) -> None:
        self.name, self.url, self.clients, self.seconds, self.max_requests = name, url, clients, seconds, max_requests
        self.payloads, _ = synthetic_rows(500, seed=7)
        self.latencies: list[list[float]] = [[] for _ in range(clients)]
        self.failures: list[str] = []
        self.answered: dict[str, tuple[int, str]] = {}  # request_uid -> (record id, version) of every 200
        self.sent = 0
        self._lock = threading.Lock()

    def _next(self) -> int | None:
        with self._lock:
            if self.sent >= self.max_requests:
                return None
            self.sent += 1
            return self.sent

    def client(self, i: int, deadline: float) -> None:
        with requests.Session() as session:
            while time.perf_counter() < deadline and (n := self._next()) is not None:
                uid = f"{self.name}-{i}-{n}"
                body = {**self.payloads[n % len(self.payloads)], "request_uid": uid}
                started = time.perf_counter()
                try:
                    r = session.post(f"{self.url}/predict/{MODEL}", json=body, timeout=30)
                    if r.status_code == 200:
                        answer = r.json()
                        with self._lock:
                            self.answered[uid] = (answer["record_id"], answer["version"])
                    else:
                        self.failures.append(f"HTTP {r.status_code}: {r.text[:200]}")
                except requests.RequestException as e:
                    self.failures.append(type(e).__name__)
                self.latencies[i].append(time.perf_counter() - started)

    def run(self, controller: Any | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        deadline = started + self.seconds
        threads = [threading.Thread(target=self.client, args=(i, deadline)) for i in range(self.clients)]
        for t in threads:
            t.start()
        actions = controller(started, self.seconds) if controller else []
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        ms = np.array([x for per in self.latencies for x in per]) * 1000
        return {
            "requests": int(ms.size),
            "failed": len(self.failures),
            "failures": sorted(set(self.failures))[:5],
            "requests_per_s": round(ms.size / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1),
            "versions_served": sorted({v for _, v in self.answered.values()}),
            "actions": actions,
        }


class Faults:
    """Promotes, reloads, deploys and rolls back in turn while a phase runs; checks what the backend serves."""

    def __init__(self, url: str, store: ModelStore, versions: list[str], broken: str, settings: Any, every: float):
        self.url, self.store, self.versions, self.broken = url, store, versions, broken
        self.settings, self.every = settings, every
        self.token = mint(SECRET_KEY, role="admin", ttl=timedelta(hours=1), subject="bench")

    def reload(self) -> int:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.post(f"{self.url}/admin/reload_models", headers=headers, timeout=60).status_code

    def other_version(self) -> str:
        current = self.store.production(MODEL)
        return self.versions[1] if current and current.version == self.versions[0] else self.versions[0]

    def promote_and_reload(self) -> str:
        self.store.promote(MODEL, self.other_version(), reason="bench: promote", actor="bench")
        return f"reload HTTP {self.reload()}"

    def deploy(self, version: str) -> str:
        from jobs.deploy import deploy
        from jobs.errors import DeployError
        from jobs.run_context import RunContext

        decision = self.settings.run_folder(DS).decision
        decision.parent.mkdir(parents=True, exist_ok=True)
        entry = {"verdict": "deploy", "challenger_version": version}
        decision.write_text(json.dumps({"ds": DS, "models": {MODEL: entry}}), encoding="utf-8")
        try:
            return deploy(self.settings, RunContext.for_ds(DS), backoff_seconds=0.1).status
        except DeployError:
            return "rolled_back"

    def rollback_and_reload(self) -> str:
        change = self.store.rollback(MODEL, reason="bench: rollback", actor="bench")
        return f"rolled back to {change.version}, reload HTTP {self.reload()}"

    def actions(self) -> list[tuple[str, Any, str]]:
        """(name, action, what it must end in)."""
        return [
            ("promote + reload", self.promote_and_reload, "reload HTTP 200"),
            ("deploy", lambda: self.deploy(self.other_version()), "deployed"),
            ("rollback + reload", self.rollback_and_reload, "reload HTTP 200"),
            ("deploy of a version that cannot load", lambda: self.deploy(self.broken), "rolled_back"),
        ]

    def __call__(self, started: float, seconds: float) -> list[dict[str, Any]]:
        done: list[dict[str, Any]] = []
        time.sleep(max(0.0, started + 0.1 * seconds - time.perf_counter()))
        plan = self.actions()
        while time.perf_counter() < started + 0.9 * seconds:
            name, action, expected = plan[len(done) % len(plan)]
            t0 = time.perf_counter()
            outcome = action()
            ms = round((time.perf_counter() - t0) * 1000, 1)
            served = requests.get(f"{self.url}/models", timeout=10).json()["models"].get(MODEL, {}).get("version")
            production = self.store.production(MODEL)
            consistent = production is not None and served == production.version
            ok = expected in outcome and consistent
            done.append({"action": name, "outcome": outcome, "ms": ms, "serves_production": consistent, "ok": ok})
            time.sleep(self.every)
        return done


def check_records(db: Any, phases: list[Phase]) -> dict[str, int]:
    """Every prediction answered 200 is in health_records exactly once, as answered; nothing else is."""
    import psycopg2

    answered = {uid: answer for phase in phases for uid, answer in phase.answered.items()}
    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, data::jsonb ->> 'request_uid', model_version FROM health_records")
        rows = cur.fetchall()
    stored: dict[str, list[tuple[int, str]]] = {}
    for record_id, uid, version in rows:
        stored.setdefault(uid, []).append((record_id, version))
    return {
        "answered": len(answered),
        "rows": len(rows),
        "missing": sum(1 for uid in answered if uid not in stored),
        "duplicated": sum(1 for found in stored.values() if len(found) > 1),
        "not_answered_but_stored": sum(1 for uid in stored if uid not in answered),
        "differ_from_answer": sum(1 for uid, answer in answered.items() if stored.get(uid, [None])[0] != answer),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--max-requests", type=int, default=50_000, help="at most this many requests per phase")
    parser.add_argument("--fault-every", type=float, default=0.5, help="seconds between two faults")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from jobs.settings import Settings

    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        tmp_path = Path(tmp)
        cluster = EmbeddedPostgres(tmp_path / "pg", _free_port())
        cluster.start()
        backend = None
        try:
            db = cluster.database_url()
            store = ModelStore(tmp_path / "store")
            versions, broken = fit_versions(store)
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
            settings = Settings.from_env(
                env={
                    **env,
                    "DATA_DIR": str(tmp_path / "data"),
                    "BACKEND_URL": url,
                    "ADMIN_JWT_TOKEN": mint(SECRET_KEY, role="admin", ttl=timedelta(hours=1), subject="bench"),
                    "RELOAD_ATTEMPTS": "2",
                    "RELOAD_TIMEOUT_SECONDS": "30",
                },
                root=ROOT,
            )
            faults = Faults(url, store, versions, broken, settings, args.fault_every)
            phases = [
                Phase("warmup", url, args.clients, 2.0, args.max_requests),  # connections, the pool, first answers
                Phase("baseline", url, args.clients, args.seconds, args.max_requests),
                Phase("faults", url, args.clients, args.seconds, args.max_requests),
            ]
            phases[0].run()
            baseline = phases[1].run()
            during = phases[2].run(faults)
            records = check_records(db, phases)  # the warm-up's records too: every answer, every row
        finally:
            if backend is not None:
                backend.terminate()
                backend.wait(timeout=30)
            cluster.stop()

    return report(args, baseline, during, records)


def report(args: argparse.Namespace, baseline: dict, during: dict, records: dict[str, int]) -> int:
    ratios = {k: round(during[k] / baseline[k], 2) for k in ("requests_per_s", "p50_ms", "p99_ms")}
    actions = during["actions"]
    errors = baseline["failed"] + during["failed"]
    record_problems = sum(
        records[k] for k in ("missing", "duplicated", "not_answered_but_stored", "differ_from_answer")
    )
    failed_actions = [a for a in actions if not a["ok"]]
    print(
        f"{args.clients} clients, {args.seconds:g} s per phase, model {MODEL}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'phase':<10} {'requests':>9} {'failed':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, r in (("baseline", baseline), ("faults", during)):
        print(
            f"{name:<10} {r['requests']:>9,} {r['failed']:>7} {r['requests_per_s']:>8.1f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f}"
        )
    print(f"faults / baseline: req/s x{ratios['requests_per_s']}, p50 x{ratios['p50_ms']}, p99 x{ratios['p99_ms']}")
    by_kind: dict[str, int] = {}
    for a in actions:
        by_kind[a["action"]] = by_kind.get(a["action"], 0) + 1
    print(f"faults: {len(actions)} ({', '.join(f'{n} {k}' for k, n in by_kind.items())}), {len(failed_actions)} failed")
    print(f"versions served during the faults: {', '.join(during['versions_served'])}")
    print(
        f"records: {records['answered']:,} answered 200, {records['rows']:,} in health_records; missing "
        f"{records['missing']}, duplicated {records['duplicated']}, stored without an answer "
        f"{records['not_answered_but_stored']}, differing from the answer {records['differ_from_answer']}"
    )
    payload = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),  # the machine is shared: other work counts
        "clients": args.clients,
        "seconds": args.seconds,
        "max_requests": args.max_requests,
        "fault_every": args.fault_every,
        "errors": errors,
        "baseline": baseline,
        "faults": during,
        "ratios": ratios,
        "records": records,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"written to {RESULT.relative_to(ROOT)}")
    ok = errors == 0 and record_problems == 0 and not failed_actions and len(by_kind) == 4
    print("all checks passed" if ok else "A CHECK FAILED: errors, records or faults above")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
