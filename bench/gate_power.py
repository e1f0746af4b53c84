"""How often does the champion/challenger gate promote? A simulation of paired predictions over many seeds.

For each seed, a holdout of ``--holdout`` rows where each pair of predictions disagrees with probability
``--disagree``; on a disagreeing row the challenger is the one that is right with probability
``1/2 + gain / (2 * disagree)``, so its true accuracy is ``gain`` above the champion's. Every seed runs the real
``jobs.validate.decide`` (McNemar exact test + paired bootstrap interval + floor + minimum holdout).

Targets: false promotions (challenger no better, gain 0) at most 1%; promotions of a truly 2-points-better challenger
(holdout 5,000, 20% disagreeing) at least 80%. The baseline, in the same run, is the naive gate "deploy when the
challenger's holdout accuracy is higher". The exact operating characteristics of the McNemar part (binomial sums,
no simulation error) are printed beside the simulated shares, for several significance levels.

    .venv/bin/python -m bench.gate_power                  # 10,000 seeds per scenario
    .venv/bin/python -m bench.gate_power --seeds 1000     # quicker

Prints tables and writes bench/results/gate_power.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import binom

from jobs.ml.thresholds import GateThresholds
from jobs.validate import decide

ROOT = Path(__file__).resolve().parents[1]


def paired_predictions(seed: int, n: int, disagree: float, gain: float, accuracy: float = 0.8):
    """y, champion, challenger: ``disagree`` of the pairs differ; the challenger's true accuracy is ``gain`` higher."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    discordant = rng.random(n) < disagree
    challenger_wins = rng.random(n) < 0.5 + gain / (2 * disagree)
    both_right = rng.random(n) < (accuracy - disagree / 2) / (1 - disagree)
    new_right = np.where(discordant, challenger_wins, both_right)
    old_right = np.where(discordant, ~challenger_wins, both_right)
    return y, np.where(old_right, y, 1 - y), np.where(new_right, y, 1 - y)


def exact_mcnemar(n: int, disagree: float, gain: float, alpha: float) -> float:
    """P(one-sided exact McNemar rejects at ``alpha``), summed over the binomial number of discordant pairs."""
    m = np.arange(int(n * disagree * 0.7), int(n * disagree * 1.3) + 1)
    weights = binom.pmf(m, n, disagree)
    p_win = 0.5 + gain / (2 * disagree)
    total = 0.0
    for count, weight in zip(m, weights, strict=True):
        b = np.arange(count + 1)
        critical = b[binom.sf(b - 1, count, 0.5) < alpha].min()
        total += weight * binom.sf(critical - 1, count, p_win)
    return float(total / weights.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10_000)
    parser.add_argument("--holdout", type=int, default=5_000)
    parser.add_argument("--disagree", type=float, default=0.2)
    parser.add_argument("--gain", type=float, default=0.02, help="the better challenger's true accuracy gain")
    args = parser.parse_args()
    thresholds = GateThresholds()

    scenarios = {
        "no better (gain 0)": 0.0,
        f"better (+{args.gain:g})": args.gain,
        f"worse (-{args.gain:g})": -args.gain,
    }
    rows = []
    started = time.perf_counter()
    for label, scenario_gain in scenarios.items():
        verdicts = {"deploy": 0, "reject": 0, "inconclusive": 0}
        naive = 0
        for seed in range(args.seeds):
            y, old, new = paired_predictions(seed, args.holdout, args.disagree, scenario_gain)
            verdicts[decide(y, old, new, thresholds).verdict] += 1
            naive += int((new == y).mean() > (old == y).mean())
        rows.append(
            {
                "scenario": label,
                "gain": scenario_gain,
                "seeds": args.seeds,
                "deploy": verdicts["deploy"] / args.seeds,
                "reject": verdicts["reject"] / args.seeds,
                "inconclusive": verdicts["inconclusive"] / args.seeds,
                "naive_deploy": naive / args.seeds,
                "exact_mcnemar_deploy": exact_mcnemar(args.holdout, args.disagree, scenario_gain, thresholds.alpha),
            }
        )
    seconds = time.perf_counter() - started

    print(
        f"holdout {args.holdout:,} rows, {args.disagree:.0%} of pairs disagreeing, {args.seeds:,} seeds per "
        f"scenario, alpha {thresholds.alpha}, {seconds:.0f} s"
    )
    print(f"{'scenario':<22} {'deploy':>8} {'reject':>8} {'inconcl.':>9} {'exact':>8} {'naive gate':>11}")
    for r in rows:
        print(
            f"{r['scenario']:<22} {r['deploy']:>8.2%} {r['reject']:>8.2%} {r['inconclusive']:>9.2%} "
            f"{r['exact_mcnemar_deploy']:>8.2%} {r['naive_deploy']:>11.2%}"
        )

    tradeoff = []
    for alpha in (0.005, 0.01, 0.011, 0.02, 0.05):
        tradeoff.append(
            {
                "alpha": alpha,
                "false_promotion": exact_mcnemar(args.holdout, args.disagree, 0.0, alpha),
                "power": exact_mcnemar(args.holdout, args.disagree, args.gain, alpha),
            }
        )
    print(
        "\nExact McNemar trade-off (no simulation error): alpha -> false promotions at gain 0, promotions at gain "
        f"+{args.gain:g}"
    )
    for t in tradeoff:
        print(f"  alpha {t['alpha']:<6} false promotions {t['false_promotion']:7.3%}   power {t['power']:7.2%}")

    out = ROOT / "bench" / "results" / "gate_power.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "holdout": args.holdout,
        "disagree": args.disagree,
        "thresholds": thresholds.to_dict(),
        "scenarios": rows,
        "tradeoff": tradeoff,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
