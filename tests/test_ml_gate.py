"""The champion/challenger gate on hand-built paired scores: every verdict, every reason, each metric's own test,
the first-run policy and the forced option."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from jobs.errors import ConfigError
from jobs.ml import gate
from jobs.ml.gate import decide
from jobs.ml.paired import delong, mcnemar_exact
from jobs.ml.thresholds import GateThresholds


def scored(n: int, *, champion_signal: float, challenger_signal: float, positives: float = 0.3, seed: int = 0):
    """``n`` rows and two models' probabilities: each is the label times its signal plus shared and own noise, so
    the two are correlated like two versions of one model; more signal ranks better."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positives).astype(int)
    shared = rng.normal(0, 1, n)

    def model(signal: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(signal * (2 * y - 1) + shared + 0.5 * rng.normal(0, 1, n) - 0.8)))

    return y, model(champion_signal), model(challenger_signal)


def at(scores: np.ndarray, y: np.ndarray, recall: float) -> float:
    """The threshold that flags ``recall`` of the positives."""
    positives = np.sort(scores[y == 1])[::-1]
    return float(positives[int(np.ceil(recall * len(positives))) - 1])


def judge(y, old, new, **kwargs):
    return decide(
        y,
        old,
        new,
        challenger_threshold=at(new, y, 0.8),
        champion_threshold=None if old is None else at(old, y, 0.8),
        **kwargs,
    )


def test_clearly_better_challenger_is_deployed_with_delongs_evidence() -> None:
    y, old, new = scored(3000, champion_signal=0.8, challenger_signal=1.3)
    d = judge(y, old, new)
    assert d.verdict == "deploy" and d.codes == (gate.SIGNIFICANTLY_BETTER,)
    c = d.comparison
    assert c.metric == "roc_auc" and c.test == "DeLong's test"
    assert c.challenger == pytest.approx(roc_auc_score(y, new)) and c.champion == pytest.approx(roc_auc_score(y, old))
    assert c.difference == pytest.approx(c.challenger - c.champion) and c.interval[0] > 0
    assert c.p_better < 1e-6 and c.p_worse > 0.99
    assert "DeLong's test gives p = " in d.reasons[0] and "roc_auc" in d.reasons[0]
    record = d.to_dict()
    assert record["comparison"]["p_value"] == c.p_better and record["thresholds"]["alpha"] == pytest.approx(0.05 / 52)


def test_identical_models_are_inconclusive() -> None:
    y, old, _ = scored(2000, champion_signal=1.0, challenger_signal=1.0)
    d = judge(y, old, old.copy())
    assert d.verdict == "inconclusive" and d.codes == (gate.NOT_SIGNIFICANT, gate.INTERVAL_TOO_LOW)
    assert d.comparison.p_better == 1.0 and d.comparison.interval == (0.0, 0.0)
    assert "No evidence that the new model is better" in d.reasons[0] and "Production stays" in d.reasons[0]


def test_a_small_gain_that_noise_explains_is_inconclusive() -> None:
    y, old, new = scored(600, champion_signal=1.0, challenger_signal=1.03, seed=3)
    d = judge(y, old, new)
    assert d.verdict == "inconclusive" and gate.NOT_SIGNIFICANT in d.codes
    assert d.comparison.p_better > d.thresholds.alpha


def test_significantly_worse_challenger_is_rejected() -> None:
    y, old, new = scored(3000, champion_signal=1.3, challenger_signal=0.8)
    d = judge(y, old, new)
    assert d.verdict == "reject" and d.codes == (gate.SIGNIFICANTLY_WORSE,)
    assert d.comparison.p_worse < 1e-6 and d.comparison.interval[1] < 0
    assert "The new model is worse than production" in d.reasons[0]


def test_a_challenger_that_ranks_too_poorly_is_rejected_even_when_better_than_production() -> None:
    y, old, new = scored(3000, champion_signal=0.0, challenger_signal=0.15)
    d = judge(y, old, new)
    assert d.challenger_auc < 0.6
    assert d.verdict == "reject" and d.codes == (gate.BELOW_FLOOR,)
    assert "is below the floor of 0.6" in d.reasons[0]


def test_a_challenger_that_would_miss_more_patients_is_rejected() -> None:
    y, old, new = scored(3000, champion_signal=0.8, challenger_signal=1.3)
    high = at(new, y, 0.6)  # better ranking, but cut where it flags 60% of the positives instead of 80%
    d = decide(y, old, new, challenger_threshold=high, champion_threshold=at(old, y, 0.8))
    assert d.verdict == "reject" and d.codes == (gate.RECALL_TOO_LOW,)
    assert d.challenger_recall == pytest.approx(0.6, abs=0.01) and d.champion_recall == pytest.approx(0.8, abs=0.01)
    assert "it would miss more patients" in d.reasons[0]


def test_an_evaluation_below_the_minimum_is_inconclusive_whatever_the_figures() -> None:
    y, old, new = scored(150, champion_signal=0.5, challenger_signal=2.0)
    d = judge(y, old, new, thresholds=GateThresholds(min_holdout=200))
    assert d.verdict == "inconclusive" and d.codes == (gate.HOLDOUT_TOO_SMALL,)
    assert "The evaluation has 150 labelled rows" in d.reasons[0] and "at least 200 rows" in d.reasons[0]
    few_positives = judge(*scored(1000, champion_signal=0.5, challenger_signal=2.0, positives=0.01))
    assert few_positives.codes == (gate.HOLDOUT_TOO_SMALL,)
    assert decide([], None, [], challenger_threshold=0.5).codes == (gate.HOLDOUT_TOO_SMALL,)


def test_first_run_deploys_on_the_absolute_checks_alone() -> None:
    y, _, new = scored(1000, champion_signal=0.0, challenger_signal=1.5)
    d = judge(y, None, new)
    assert d.verdict == "deploy" and d.codes == (gate.FIRST_DEPLOYMENT,) and d.comparison is None
    assert "No model is in production, so only the absolute checks apply" in d.reasons[0]
    assert judge(y[:100], None, new[:100]).verdict == "inconclusive"
    coin = np.random.default_rng(1).random(1000)
    assert judge(y, None, coin).verdict == "reject"


@pytest.mark.parametrize(("metric", "test"), [("log_loss", "a paired bootstrap"), ("accuracy", "McNemar's exact test")])
def test_each_metric_is_judged_by_its_own_paired_test(metric: str, test: str) -> None:
    y, old, new = scored(3000, champion_signal=0.8, challenger_signal=1.4)
    d = judge(y, old, new, metric=metric)
    assert d.comparison.metric == metric and d.comparison.test == test
    assert d.verdict == "deploy" and d.comparison.difference > 0
    assert f"{test} gives p = " in d.reasons[0]
    if metric == "accuracy":
        b, c = d.comparison.discordant
        assert d.comparison.p_better == pytest.approx(mcnemar_exact(b, c)[0])
        assert d.comparison.difference == pytest.approx((b - c) / 3000)


def test_delong_matches_a_bootstrap_of_the_auc_difference() -> None:
    y, old, new = scored(1500, champion_signal=0.9, challenger_signal=1.1, seed=5)
    c = delong(y, new, old, 0.95)
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(400):
        i = rng.integers(0, len(y), len(y))
        differences.append(roc_auc_score(y[i], new[i]) - roc_auc_score(y[i], old[i]))
    se = (c.interval[1] - c.interval[0]) / (2 * 1.959964)
    assert se == pytest.approx(np.std(differences), rel=0.2)


def test_notes_lead_the_reasons() -> None:
    y, old, new = scored(3000, champion_signal=0.8, challenger_signal=1.3)
    d = judge(y, old, new, notes=["Only rows neither model saw are compared."])
    assert d.reasons[0] == "Only rows neither model saw are compared." and d.verdict == "deploy"


def test_forced_deployment_is_explicit_and_recorded() -> None:
    y, old, new = scored(3000, champion_signal=1.3, challenger_signal=0.8)
    d = judge(y, old, new, force=True)
    assert d.verdict == "deploy" and d.forced and d.gate_verdict == "reject"
    assert d.codes == (gate.FORCED, gate.SIGNIFICANTLY_WORSE)
    overridden = "overriding the gate's verdict 'reject' (its reasons follow)."
    assert d.reasons[0] == f"Deployment FORCED by an operator, {overridden}"
    assert d.to_dict()["forced"] is True and d.to_dict()["gate_verdict"] == "reject"
    assert not judge(y, old, new).forced
    better = judge(y, new, old, force=True, force_reason="hotfix")  # the gate deploys this one on its own
    assert better.verdict == "deploy" and better.gate_verdict == "deploy"
    anyway = "the gate would have deployed it anyway."
    assert better.reasons[0] == f"Deployment forced by an operator (why: hotfix); {anyway}"


def test_recipe_thresholds_change_the_verdict() -> None:
    y, old, new = scored(2000, champion_signal=1.0, challenger_signal=1.05, seed=2)
    default = judge(y, old, new)
    assert default.thresholds.alpha < default.comparison.p_better < 0.05 and default.verdict == "inconclusive"
    lenient = judge(y, old, new, thresholds=GateThresholds(alpha=0.05))
    assert lenient.verdict == "deploy" and lenient.thresholds.alpha == 0.05


def test_decide_is_pure_and_reproducible() -> None:
    y, old, new = scored(3000, champion_signal=1.0, challenger_signal=1.1)
    assert judge(y, old, new) == judge(y, old, new)
    assert judge(y, old, new, metric="log_loss") == judge(y, old, new, metric="log_loss")


def test_unpaired_or_invalid_inputs_are_refused() -> None:
    with pytest.raises(ConfigError, match="one score per row"):
        decide([0, 1, 1], [0.1, 0.9], [0.2, 0.8, 0.7], challenger_threshold=0.5, champion_threshold=0.5)
    with pytest.raises(ConfigError, match="must hold only 0 and 1"):
        decide([0, 2], None, [0.1, 0.2], challenger_threshold=0.5)
    with pytest.raises(ConfigError, match=r"probabilities in \[0, 1\]"):
        decide([0, 1], None, [0.1, 1.2], challenger_threshold=0.5)
    with pytest.raises(ConfigError, match="metric must be one of roc_auc, log_loss, accuracy"):
        decide([0, 1], None, [0.1, 0.2], challenger_threshold=0.5, metric="f1")
    with pytest.raises(ConfigError, match=r"The 'alpha' threshold must be a number in \(0, 1\). Got 2"):
        GateThresholds(alpha=2.0)
