"""How often does the gate promote? False promotions over years of weekly runs, and power against the demo's drift.

1. **No true change.** Three models, each judged once a week for 52 weeks, where the challenger is exactly as good
   as production: two versions of one model (correlated scores, equal signal) on an evaluation period of
   ``--rows`` rows. Every test runs the real :func:`jobs.ml.gate.decide` with the default thresholds. The figure is
   the expected number of false promotions per year for the three models, against the same gate at the old
   per-test level of 0.01 and the naive gate "deploy when the challenger's metric is higher".
2. **The demo's drift.** The demo's generator (:mod:`jobs.demo.generator`) for several seeds; for each model, a
   champion trained as a run ``--gap`` weeks earlier would have trained it and a challenger trained as of the last
   Sunday, both exactly as ``train_models`` does, judged on the last Sunday's evaluation rows. The figure is the
   share of (seed, model) pairs deployed, per gap.

    .venv/bin/python -m bench.gate_power                      # 200 simulated years, 4 demo seeds
    .venv/bin/python -m bench.gate_power --years 50 --seeds 2 # quicker

Prints tables and writes bench/results/gate_power.json (docs/models-and-gate.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from jobs.ml.gate import DEPLOY, decide
from jobs.ml.thresholds import GateThresholds

ROOT = Path(__file__).resolve().parents[1]
MODELS, WEEKS = 3, 52
DEMO_END = date(2026, 11, 22)  # the generator's records end the day before


def equal_models(rng: np.random.Generator, n: int, positives: float = 0.35, signal: float = 1.0):
    """Labels and two equally good, correlated models' probabilities (shared noise, plus each one's own)."""
    y = (rng.random(n) < positives).astype(int)
    shared = rng.normal(0, 1, n)

    def model() -> np.ndarray:
        return 1 / (1 + np.exp(-(signal * (2 * y - 1) + shared + 0.5 * rng.normal(0, 1, n) - 0.6)))

    return y, model(), model()


def cut(scores: np.ndarray, y: np.ndarray, recall: float = 0.8) -> float:
    positives = np.sort(scores[y == 1])[::-1]
    return float(positives[int(np.ceil(recall * len(positives))) - 1])


def no_change(years: int, rows: int, seed: int) -> dict:
    """False promotions per year of three models judged weekly when nothing changed."""
    rng = np.random.default_rng(seed)
    gates = {"gate (alpha 0.05/52 per test)": GateThresholds(), "gate at alpha 0.01": GateThresholds(alpha=0.01)}
    counts = {name: np.zeros(years) for name in [*gates, "naive: deploy when higher"]}
    for year in range(years):
        for _ in range(MODELS * WEEKS):
            y, old, new = equal_models(rng, rows)
            for name, thresholds in gates.items():
                d = decide(
                    y,
                    old,
                    new,
                    challenger_threshold=cut(new, y),
                    champion_threshold=cut(old, y),
                    thresholds=thresholds,
                )
                counts[name][year] += d.verdict == DEPLOY
            from sklearn.metrics import roc_auc_score

            counts["naive: deploy when higher"][year] += roc_auc_score(y, new) > roc_auc_score(y, old)
    return {
        name: {"per_year": float(c.mean()), "per_year_se": float(c.std(ddof=1) / np.sqrt(years))}
        for name, c in counts.items()
    }


def demo_feature_frames(seed_data, recipes) -> dict:
    """The demo's records as each model's feature table would hold them, without Spark: the JSON read by the
    serving backend's rules (the same definitions as the SQL), usable rows only, labels with their verified_at."""
    import pandas as pd

    from jobs.errors import ModelInputError
    from jobs.ml.recipes import coerce_inputs

    records = seed_data.records
    frames = {}
    for name, recipe in recipes.items():
        rows, keep = [], []
        for i, (text, kind) in enumerate(zip(records["data"], records["record_type"], strict=True)):
            if kind != name:
                continue
            try:
                payload = json.loads(text)
                rows.append(coerce_inputs(recipe, payload))
                keep.append(i)
            except (ValueError, TypeError, ModelInputError):
                continue  # quarantined by the SQL models
        frame = pd.DataFrame(rows)
        kept = records.iloc[keep].reset_index(drop=True)
        for column in ("user_id", "created_at"):
            frame[column] = kept[column].to_numpy()
        frame["record_id"] = kept["id"].to_numpy()
        frame[recipe.label] = kept["verified_outcome"].map({"positive": 1.0, "negative": 0.0}).to_numpy()
        if "verified_at" in kept:
            frame["verified_at"] = pd.to_datetime(kept["verified_at"], utc=True).to_numpy()
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        if recipe.slice_column:
            frame[recipe.slice_column] = "all"
        frames[name] = frame
    return frames


def demo_power(seeds: int, gaps: list[int], rows: int) -> list[dict]:
    """Share of the demo's models a challenger replaces, for champions trained ``gap`` weeks earlier."""
    from jobs.demo.generator import generate
    from jobs.ml.backtest import train_as_of
    from jobs.ml.metrics import positive_scores
    from jobs.ml.recipes import features_frame, load_recipes

    recipes = load_recipes(ROOT / "models")
    last = datetime(DEMO_END.year, DEMO_END.month, DEMO_END.day, tzinfo=UTC)
    results = {gap: {"deploy": 0, "judged": 0, "p_values": []} for gap in gaps}
    for seed in range(seeds):
        frames = demo_feature_frames(generate(rows, seed, DEMO_END), recipes)
        for name, recipe in recipes.items():
            frame = frames[name]
            challenger, parts = train_as_of(recipe, frame, last)
            evaluation = parts.evaluation
            y = evaluation[recipe.label].to_numpy()
            for gap in gaps:
                champion, _ = train_as_of(recipe, frame, last - timedelta(weeks=gap))
                if challenger is None or champion is None:
                    continue
                d = decide(
                    y,
                    positive_scores(champion.estimator, features_frame(recipe, evaluation)),
                    positive_scores(challenger.estimator, features_frame(recipe, evaluation)),
                    challenger_threshold=challenger.threshold,
                    champion_threshold=champion.threshold,
                    metric=recipe.metric,
                    thresholds=recipe.thresholds,
                )
                results[gap]["judged"] += 1
                results[gap]["deploy"] += d.verdict == DEPLOY
                if d.comparison is not None:
                    results[gap]["p_values"].append(d.comparison.p_better)
    return [
        {
            "gap_weeks": gap,
            "judged": r["judged"],
            "deployed": r["deploy"],
            "share_deployed": r["deploy"] / r["judged"] if r["judged"] else None,
            "median_p_value": float(np.median(r["p_values"])) if r["p_values"] else None,
        }
        for gap, r in results.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=200, help="simulated years with no true change")
    parser.add_argument(
        "--rows", type=int, default=900, help="evaluation rows per weekly test (the demo has ~500-1,000)"
    )
    parser.add_argument("--seeds", type=int, default=4, help="demo data sets for the power against drift")
    parser.add_argument("--demo-rows", type=int, default=200_000, help="records per demo data set (make demo's)")
    parser.add_argument("--gaps", type=int, nargs="+", default=[1, 4, 12], help="champion ages in weeks")
    args = parser.parse_args()

    started = time.perf_counter()
    false = no_change(args.years, args.rows, seed=0)
    print(f"No true change: {MODELS} models x {WEEKS} weeks, {args.rows} evaluation rows, {args.years} years")
    print(f"  {'policy':<32} {'false promotions per year':>26}")
    for name, r in false.items():
        print(f"  {name:<32} {r['per_year']:>18.3f} ± {r['per_year_se']:.3f}")
    power = demo_power(args.seeds, args.gaps, args.demo_rows)
    print(f"\nThe demo's drift: {args.seeds} data sets of {args.demo_rows:,} records, 3 models each")
    print(f"  {'champion age':<14} {'deployed':>10} {'median p':>10}")
    for r in power:
        share = "-" if r["share_deployed"] is None else f"{r['deployed']}/{r['judged']}"
        p = "-" if r["median_p_value"] is None else f"{r['median_p_value']:.2g}"
        print(f"  {r['gap_weeks']:>2} weeks{'':<6} {share:>10} {p:>10}")
    seconds = time.perf_counter() - started

    out = ROOT / "bench" / "results" / "gate_power.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "thresholds": GateThresholds().to_dict(),
        "no_change": {"models": MODELS, "weeks": WEEKS, "rows": args.rows, "years": args.years, "policies": false},
        "demo_drift": {"seeds": args.seeds, "rows": args.demo_rows, "gaps": power},
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\n{seconds:.0f} s; written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
