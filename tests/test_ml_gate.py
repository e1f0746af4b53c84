"""The champion/challenger gate on hand-built paired predictions: every verdict, every reason, the first-run policy
and the forced option."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.errors import ConfigError
from jobs.ml import gate
from jobs.validate import GateThresholds, decide


def paired(n: int, *, both_right: int, new_only: int, old_only: int, positives: float = 0.5):
    """``n`` holdout rows: ``both_right`` rows both models get right, ``new_only``/``old_only`` rows only one does,
    the rest both get wrong. Labels alternate so that ``positives`` of them are 1."""
    assert both_right + new_only + old_only <= n
    y = (np.arange(n) < round(n * positives)).astype(int)
    np.random.default_rng(0).shuffle(y)
    new_right = np.zeros(n, bool)
    old_right = np.zeros(n, bool)
    new_right[:both_right] = old_right[:both_right] = True
    new_right[both_right : both_right + new_only] = True
    old_right[both_right + new_only : both_right + new_only + old_only] = True
    return y, np.where(old_right, y, 1 - y), np.where(new_right, y, 1 - y)


def test_clearly_better_challenger_is_deployed_with_the_evidence() -> None:
    y, old, new = paired(2000, both_right=1400, new_only=260, old_only=140)
    d = decide(y, old, new, GateThresholds())
    assert d.verdict == "deploy" and d.codes == (gate.SIGNIFICANTLY_BETTER,)
    assert d.challenger_only_correct == 260 and d.champion_only_correct == 140
    assert d.difference == pytest.approx(0.06)
    assert d.p_value < 1e-8 and d.interval[0] > 0.03 and d.interval[1] < 0.09
    assert d.challenger_accuracy == pytest.approx(0.83) and d.champion_accuracy == pytest.approx(0.77)
    assert "McNemar's exact test gives p = " in d.reasons[0] and "new model alone is right on 260" in d.reasons[0]
    record = d.to_dict()
    assert record["thresholds"]["alpha"] == 0.01 and record["interval"] == list(d.interval)
    assert record["discordant"] == {"challenger_only_correct": 260, "champion_only_correct": 140}


def test_identical_predictions_are_inconclusive() -> None:
    y, old, _ = paired(2000, both_right=1600, new_only=0, old_only=0)
    d = decide(y, old, old.copy())
    assert d.verdict == "inconclusive"
    assert d.codes == (gate.NOT_SIGNIFICANT, gate.INTERVAL_TOO_LOW)
    assert d.p_value == 1.0 and d.interval == (0.0, 0.0)
    assert "No evidence that the new model is better" in d.reasons[0] and "Production stays" in d.reasons[0]


def test_a_small_gain_that_noise_explains_is_inconclusive() -> None:
    y, old, new = paired(1000, both_right=700, new_only=60, old_only=50)
    d = decide(y, old, new)
    assert d.verdict == "inconclusive" and gate.NOT_SIGNIFICANT in d.codes
    assert 0.1 < d.p_value < 1 and d.interval[0] < 0 < d.interval[1]


def test_significant_p_value_but_interval_below_the_required_improvement_is_inconclusive() -> None:
    y, old, new = paired(4000, both_right=3000, new_only=330, old_only=230)
    d = decide(y, old, new, GateThresholds(min_improvement=0.02))
    assert d.p_value < 0.01 and d.interval[0] < 0.02
    assert d.verdict == "inconclusive" and d.codes == (gate.INTERVAL_TOO_LOW,)
    assert "not above the required improvement of 0.02" in d.reasons[0]


def test_significantly_worse_challenger_is_rejected() -> None:
    y, old, new = paired(2000, both_right=1400, new_only=100, old_only=260)
    d = decide(y, old, new)
    assert d.verdict == "reject" and d.codes == (gate.SIGNIFICANTLY_WORSE,)
    assert d.p_value_worse < 1e-6 and d.interval[1] < 0
    assert "The new model is worse than production" in d.reasons[0]


def test_below_the_majority_class_floor_is_rejected_even_when_better_than_production() -> None:
    # 80% negatives: always saying 0 scores 0.80; the challenger (0.78) beats the champion (0.70) but not the floor
    y, old, new = paired(2000, both_right=1300, new_only=260, old_only=100, positives=0.2)
    d = decide(y, old, new)
    assert d.majority_accuracy == pytest.approx(0.8)
    assert d.verdict == "reject" and d.codes == (gate.BELOW_FLOOR,)
    assert "does not beat always predicting the majority class (0.8000)" in d.reasons[0]


def test_a_holdout_below_the_minimum_is_inconclusive_whatever_the_figures() -> None:
    y, old, new = paired(150, both_right=100, new_only=40, old_only=0)
    d = decide(y, old, new, GateThresholds(min_holdout=200))
    assert d.verdict == "inconclusive" and d.codes == (gate.HOLDOUT_TOO_SMALL,)
    assert "150 labelled rows, fewer than the minimum of 200" in d.reasons[0]
    assert decide([], None, []).codes == (gate.HOLDOUT_TOO_SMALL,)


def test_first_run_deploys_on_the_absolute_checks_alone() -> None:
    y, _, new = paired(1000, both_right=0, new_only=800, old_only=0)
    d = decide(y, None, new)
    assert d.verdict == "deploy" and d.codes == (gate.FIRST_DEPLOYMENT,)
    assert d.champion_accuracy is None and d.p_value is None and d.interval is None
    assert "No model is in production, so only the absolute checks apply" in d.reasons[0]
    # ... and those checks still hold on a first run
    assert decide(y[:100], None, new[:100]).verdict == "inconclusive"
    coin = np.where(np.arange(1000) % 2 == 0, y, 1 - y)
    assert decide(y, None, coin).verdict == "reject"


def test_forced_deployment_is_explicit_and_recorded() -> None:
    y, old, new = paired(2000, both_right=1400, new_only=100, old_only=260)
    d = decide(y, old, new, force=True)
    assert d.verdict == "deploy" and d.forced and d.gate_verdict == "reject"
    assert d.codes == (gate.FORCED, gate.SIGNIFICANTLY_WORSE)
    assert d.reasons[0] == "Deployment FORCED by an operator; the gate's own verdict was 'reject'."
    assert d.to_dict()["forced"] is True and d.to_dict()["gate_verdict"] == "reject"
    assert not decide(y, old, new).forced


def test_recipe_thresholds_change_the_verdict() -> None:
    y, old, new = paired(1000, both_right=700, new_only=72, old_only=48)
    default = decide(y, old, new)
    assert 0.01 < default.p_value < 0.05 and default.verdict == "inconclusive"
    lenient = decide(y, old, new, GateThresholds(alpha=0.05))
    assert lenient.verdict == "deploy" and lenient.thresholds.alpha == 0.05


def test_decide_is_pure_and_reproducible() -> None:
    y, old, new = paired(3000, both_right=2000, new_only=300, old_only=250)
    first, second = decide(y, old, new), decide(y, old, new)
    assert first == second


def test_unpaired_or_non_binary_predictions_are_refused() -> None:
    with pytest.raises(ConfigError, match="must be paired"):
        decide([0, 1, 1], [0, 1], [1, 1, 1])
    with pytest.raises(ConfigError, match="must hold only 0 and 1"):
        decide([0, 1], [0, 2], [0, 1])
    with pytest.raises(ConfigError, match=r"The 'alpha' threshold must be a number in \(0, 1\). Got 2"):
        GateThresholds(alpha=2.0)
