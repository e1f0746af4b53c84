"""notify: the report renders (Markdown + PNG + JSON) from what the steps left, and the webhook gets the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.notify import notify
from jobs.run_context import RunContext
from jobs.settings import Settings
from tests.conftest import REPO_ROOT, free_port
from tests.serving_helpers import ScriptedServer, assert_no_secrets

DS = "2026-11-22"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYWRtaW4ifQ.not-a-real-signature-but-secret"
PASSWORD = "pa55-w0rd-never-shown"


def make_settings(tmp_path: Path, webhook: str | None = None) -> Settings:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_STORE": str(tmp_path / "store"),
        "ADMIN_JWT_TOKEN": TOKEN,
        "DATABASE_URL": f"postgresql://retrain:{PASSWORD}@127.0.0.1:5/retrain",
    }
    if webhook:
        env["NOTIFY_WEBHOOK_URL"] = webhook
    return Settings.from_env(env=env, root=REPO_ROOT)


def write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")


DIABETES = {
    "verdict": "deploy",
    "forced": False,
    "codes": ["significantly_better"],
    "reasons": [
        "Drift: bmi has shifted since production was trained: PSI 0.31 > 0.2 between its 2,400 training rows and "
        "this week's 500 records. This informs; it does not change the verdict.",
        "The new model is better: on 800 evaluation rows (80 positive), roc_auc 0.8800 against production's 0.8100.",
    ],
    "metric": "roc_auc",
    "evaluation_rows": 800,
    "positives": 80,
    "evaluation_period": ["2026-10-25T00:00:00+00:00", "2026-11-22T00:00:00+00:00"],
    "comparison": {
        "test": "DeLong's test",
        "challenger": 0.88,
        "champion": 0.81,
        "difference": 0.07,
        "interval": [0.03, 0.11],
        "confidence": 0.95,
        "p_value": 2.1e-05,
        "p_value_worse": 0.99998,
        "discordant": None,
    },
    "champion": {
        "version": "2026-11-15-cccc3333",
        "operating_threshold": 0.1456,
        "metrics": {"accuracy": 0.78, "rows": 800, "roc_auc": 0.81, "recall": 0.8, "log_loss": 0.35},
    },
    "challenger": {
        "version": f"{DS}-aaaa1111",
        "operating_threshold": 0.1234,
        "training_window": {
            "weeks": 8,
            "validation_scores": {"8w": 0.812, "26w": 0.801, "52w": 0.79},
            "validated": True,
            "rows": 2345,
            "from": "2026-08-30T00:12:00+00:00",
        },
        "metrics": {"accuracy": 0.83, "rows": 800, "roc_auc": 0.88, "recall": 0.825, "log_loss": 0.3},
    },
    "drift": {
        "production_version": "2026-11-15-cccc3333",
        "metric": {"metric": "roc_auc", "at_training": 0.84, "now": 0.81, "lost": 0.03},
        "metric_rows": 800,
        "threshold": 0.2,
        "reference": {"rows": 2400, "period": ["2026-08-30T00:12:00+00:00", "2026-10-18T00:00:00+00:00"]},
        "current": {"rows": 500, "period": ["2026-11-15T00:00:00+00:00", "2026-11-22T00:00:00+00:00"]},
        "features": {
            "bmi": {
                "kind": "numeric",
                "psi": 0.31,
                "bins": ["< 24", "24 to 30", ">= 30"],
                "reference": [0.33, 0.34, 0.33],
                "current": [0.1, 0.3, 0.6],
                "unseen": [],
            },
            "sex": {
                "kind": "categorical",
                "psi": 0.01,
                "bins": ["female", "male"],
                "reference": [0.5, 0.5],
                "current": [0.52, 0.48],
                "unseen": [],
            },
        },
        "flagged": ["bmi"],
        "note": None,
    },
}
HEART = {  # written before decisions recorded drift: the report shows the rest
    "verdict": "reject",
    "reasons": ["The new model is worse than production."],
    "metric": "roc_auc",
    "evaluation_rows": 700,
    "positives": 70,
    "comparison": {
        "test": "DeLong's test",
        "challenger": 0.7,
        "champion": 0.74,
        "difference": -0.04,
        "interval": [-0.07, -0.01],
        "confidence": 0.95,
        "p_value": 0.998,
    },
    "champion": {"version": "2026-11-15-dddd4444", "operating_threshold": 0.2, "metrics": {"accuracy": 0.74}},
    "challenger": {"version": f"{DS}-bbbb2222", "operating_threshold": 0.25, "metrics": {"accuracy": 0.73}},
}


def a_finished_run(settings: Settings) -> None:
    """The files a run leaves behind: manifests, quarantine, transform/train/decision/deploy summaries."""
    folder = settings.run_folder(DS)
    write_json(folder.snapshot("predictions") / "_manifest.json", {"rows": 12_000, "duration_seconds": 4.2})
    write_json(folder.snapshot("users") / "_manifest.json", {"rows": 900, "duration_seconds": 1.1})
    for reason, rows in (("malformed_json", 60), ("duplicate", 120)):
        partition = folder.feature_table("quarantine") / f"quarantine_reason={reason}"
        partition.mkdir(parents=True)
        pq.write_table(pa.table({"record_id": list(range(rows))}), partition / "part-0.parquet")
    write_json(
        folder.transform_summary,
        {
            "ds": DS,
            "models": [{"name": "diabetes_features", "rows": 4000, "seconds": 3.0}],
            "data_tests": [
                {"name": "not_null_record_id", "status": "pass"},
                {"name": "accepted_values_sex", "status": "warn"},
            ],
        },
    )
    write_json(
        folder.train_summary,
        {
            "duration_seconds": 20.5,
            "models": {
                "diabetes": {"version": f"{DS}-aaaa1111", "rows": 3000, "labelled_rows": 1830, "label_coverage": 0.61},
                "heart": {"version": f"{DS}-bbbb2222", "rows": 2800, "label_coverage": 0.58},
            },
        },
    )
    write_json(folder.decision, {"duration_seconds": 2.5, "models": {"diabetes": DIABETES, "heart": HEART}})
    write_json(
        folder.deploy_summary,
        {"status": "deployed", "deployed": {"diabetes": f"{DS}-aaaa1111"}, "duration_seconds": 0.4},
    )


def test_the_report_renders_with_its_plot_and_the_webhook_gets_the_summary(tmp_path: Path) -> None:
    with ScriptedServer(default=(200, {"ok": True})) as receiver:
        settings = make_settings(tmp_path, webhook=receiver.url + "/hooks/T000/secret-path")
        a_finished_run(settings)
        result = notify(settings, RunContext.for_ds(DS))
    folder = settings.run_folder(DS)
    md = folder.report_md.read_text()
    report = json.loads(folder.report_json.read_text())

    assert result.status == "succeeded" and result.webhook == "posted"
    assert "![The gate's metric, production vs new model](report_metric.png)" in md
    assert folder.report_plot.exists() and folder.report_plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Data tests: 2 run, 0 failed, 1 warned (accepted_values_sex)." in md
    assert "| predictions | 12,000 |" in md and "Quarantined rows: 180 (duplicate: 120, malformed_json: 60)" in md
    assert (
        "| diabetes | 3,000 (1,830) | 61.0% | deploy | roc_auc | 0.8100 | 0.8800 | +0.0700 (95% interval +0.0300 to "
        "+0.1100) | 2.1e-05 (DeLong's test) | 0.800 at 0.1456 | 0.825 at 0.1234 | bmi |"
    ) in md
    assert "| heart | 2,800 (0) | 58.0% | reject | roc_auc | 0.7400 | 0.7000 | -0.0400 (95% interval" in md
    assert "### diabetes: deploy" in md
    assert "- Evaluation: 800 rows (80 positive) of held-out patients, created 2026-10-25 to 2026-11-22." in md
    assert "DeLong's test gives p = 2.1e-05." in md
    assert "- Recall at each one's operating threshold: new model 0.825 at 0.1234, production 0.800 at 0.1456." in md
    assert (
        "- Training window of the new model: 8 weeks, chosen on validation (8w 0.8120, 26w 0.8010, 52w 0.7900), "
        "2,345 rows from 2026-08-30."
    ) in md
    assert (
        "- Production 2026-11-15-cccc3333 has lost 0.0300 of roc_auc since it was trained: 0.8100 on the newest "
        "weeks (800 rows), 0.8400 when trained."
    ) in md
    assert (
        "from production's 2,400 training rows to this week's 500 records, flagged above 0.2: "
        "**bmi 0.310 (drifted)**, sex 0.010." in md
    )
    assert "  - Drift: bmi has shifted since production was trained" in md and "not better" not in md
    assert "![Feature drift of diabetes: production's training rows vs this week](report_drift_diabetes.png)" in md
    assert folder.drift_plot("diabetes").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not folder.drift_plot("heart").exists()
    assert "Deployed: diabetes 2026-11-22-aaaa1111." in md
    assert "| diabetes | challenger 2026-11-22-aaaa1111 | 0.8800 | 0.3000 | 0.8250 | - | 0.8300 | - | - |" in md
    assert "| heart | champion 2026-11-15-dddd4444 | - | - | - | - | 0.7400 | - | - |" in md
    assert report["quarantine"]["by_reason"] == {"duplicate": 120, "malformed_json": 60}
    diabetes = report["models"]["diabetes"]
    assert diabetes["comparison"]["p_value"] == 2.1e-05 and diabetes["comparison"]["test"] == "DeLong's test"
    assert diabetes["challenger"]["value"] == 0.88 and diabetes["challenger"]["recall"] == 0.825
    assert diabetes["champion"]["threshold"] == 0.1456 and diabetes["challenger"]["training_window"]["weeks"] == 8
    assert diabetes["drift"]["flagged"] == ["bmi"] and diabetes["drift"]["psi"] == {"bmi": 0.31, "sex": 0.01}
    assert diabetes["drift"]["plot"] == "report_drift_diabetes.png" and report["models"]["heart"]["drift"] is None
    assert report["durations"] == {"extract": 5.3, "train": 20.5, "validate": 2.5, "deploy": 0.4, "transform": 3.0}

    (posted,) = receiver.requests
    text = posted.json()["text"]
    assert text.startswith(f"Retraining ds={DS}: succeeded.")
    assert (
        "- diabetes: deploy (roc_auc 0.8800 vs production 0.8100, +0.0700 (95% interval +0.0300 to +0.1100), "
        "p = 2.1e-05); drifted: bmi"
    ) in text
    assert "heart: reject" in text and "Deployed: diabetes" in text
    assert_no_secrets([md, folder.report_json.read_text(), text], [TOKEN, PASSWORD, "secret-path"])


def test_a_failed_run_is_reported_with_the_failure_and_how_far_it_got(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    folder = settings.run_folder(DS)
    write_json(folder.snapshot("predictions") / "_manifest.json", {"rows": 10, "duration_seconds": 1.0})
    result = notify(settings, RunContext.for_ds(DS), failures={"transform_data": f"Data test failed ({TOKEN})"})
    md = folder.report_md.read_text()
    assert result.status == "failed" and result.webhook == "not configured" and result.plot is None
    assert "## Failures" in md and "**transform_data**: Data test failed" in md
    assert "No model was trained." in md and "Deployment did not run." in md
    assert_no_secrets([md, folder.report_json.read_text()], [TOKEN])  # masked even if a message carried it


def test_transforms_duration_is_its_wall_clock_time_not_the_sum_of_models_run_side_by_side(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    models = [{"name": "a", "rows": 1, "seconds": 12.0}, {"name": "b", "rows": 1, "seconds": 11.8}]
    write_json(settings.run_folder(DS).transform_summary, {"ds": DS, "models": models, "duration_seconds": 19.2})
    notify(settings, RunContext.for_ds(DS))
    assert json.loads(settings.run_folder(DS).report_json.read_text())["durations"]["transform"] == 19.2


@pytest.mark.parametrize("down", [True, False])
def test_a_failing_webhook_is_reported_not_raised(tmp_path: Path, down: bool) -> None:
    if down:
        url, receiver = f"http://127.0.0.1:{free_port()}/hook", None
    else:
        receiver = ScriptedServer(default=(500, {"error": "nope"}))
        url = receiver.url + "/hook"
    try:
        result = notify(make_settings(tmp_path, webhook=url), RunContext.for_ds(DS))
    finally:
        if receiver:
            receiver.close()
    assert result.webhook.startswith("failed: ")
    assert ("ConnectionError" if down else "HTTP 500") in result.webhook
    assert "failed: " in Path(result.report_md).read_text()


def test_a_decision_written_before_the_gate_named_its_metric_still_renders(tmp_path: Path) -> None:
    """An older run's decision.json (accuracy only, no comparison, no drift) is reported with what it has."""
    settings = make_settings(tmp_path)
    legacy = {
        "verdict": "inconclusive",
        "reasons": ["not better than production"],
        "champion": {"version": "2026-11-15-dddd4444", "metrics": {"accuracy": 0.74, "rows": 700}},
        "challenger": {"version": f"{DS}-bbbb2222", "metrics": {"accuracy": 0.75, "rows": 700}},
    }
    write_json(settings.run_folder(DS).decision, {"models": {"heart": legacy, "liver": "not a record"}})
    notify(settings, RunContext.for_ds(DS))
    md = settings.run_folder(DS).report_md.read_text()
    assert "| heart | - | - | inconclusive | accuracy | 0.7400 | 0.7500 | - | - | - | - | - |" in md
    assert "- Reasons:\n  - not better than production" in md
    assert settings.run_folder(DS).report_plot.exists()


def test_a_model_the_gate_could_not_compare_shows_both_sides_and_says_why(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    small = {
        "verdict": "inconclusive",
        "codes": ["holdout_too_small"],
        "reasons": ["The evaluation has 196 labelled rows with 85 positives; the gate needs at least 200 rows."],
        "metric": "roc_auc",
        "evaluation_rows": 196,
        "positives": 85,
        "comparison": None,
        "challenger_auc": 0.7174,
        "champion": {"version": "2026-08-30-ce9945bb", "operating_threshold": 0.37, "metrics": {"roc_auc": 0.7066}},
        "challenger": {"version": f"{DS}-bbbb2222", "operating_threshold": 0.36, "metrics": {"roc_auc": 0.7174}},
        "drift": {
            "production_version": "2026-08-30-ce9945bb",
            "note": "Feature drift is not measured: ...",
            "flagged": [],
        },
    }
    write_json(settings.run_folder(DS).decision, {"models": {"heart": small}})
    notify(settings, RunContext.for_ds(DS))
    md = settings.run_folder(DS).report_md.read_text()
    assert "- roc_auc: new model 0.7174 vs production 0.7066; not compared (the reasons say why)." in md
    assert "- Feature drift: Feature drift is not measured: ..." in md and "report_drift_heart.png" not in md
    report = json.loads(settings.run_folder(DS).report_json.read_text())
    assert "- heart: inconclusive (roc_auc 0.7174, production 0.7066, not compared)" in report["summary"]
